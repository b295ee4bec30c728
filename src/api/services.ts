// What the API's routes are given: one services object built by the composition root (app.ts) from core/, plus
// the transport pieces registerApi adds (the auth hooks). Route files import this type, never api/index.ts.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Rejection } from '../nips/result.js';
import type {
  AccountAdminDeps,
  Accounts,
  CacheInvalidation,
  EmailVerification,
  HttpAuth,
  Identities,
  createProfiles,
  createSessions,
  createUserDirectory,
} from '../core/accounts/index.js';
import type { Admit } from '../core/admission/index.js';
import type { Billing, createPayments } from '../core/billing/index.js';
import type { createEventRecords } from '../core/events/index.js';
import type { DeliveryAudit, createRelaySettings } from '../core/forwarding/index.js';
import type { Bans } from '../core/moderation/index.js';
import type { LiveOverview, createAuditTrail, createReports } from '../core/ops/index.js';
import type { Plans } from '../core/quota/index.js';
import type { accessFor, authHooks } from './auth.js';

/** The core services the API uses, built once in app.ts. */
export interface ApiDeps {
  readonly config: Config;
  /** PUBLIC_URL, read per request: with PORT=0 it is known only once the server listens. */
  readonly publicUrl: () => string;
  readonly log: Logger;
  readonly admit: Admit;
  /** Told of every request answered 503 at its deadline (metrics). */
  readonly onDeadlineAnswer?: () => void;
  readonly accounts: Accounts;
  readonly plans: Plans;
  readonly bans: Bans;
  readonly invalidation: CacheInvalidation;
  /** What changePlan / setUserStatus / quotaStatus take. */
  readonly accountAdmin: AccountAdminDeps;
  /** Who is calling: a NIP-98 signature or a session token (core/accounts/http-auth.ts). */
  readonly auth: HttpAuth;
  readonly sessions: ReturnType<typeof createSessions>;
  readonly profiles: ReturnType<typeof createProfiles>;
  /** The account's Nostr keys (GET/POST/DELETE /v1/me/identities). */
  readonly identities: Identities;
  /** Verification emails and their links. */
  readonly emailVerification: EmailVerification;
  readonly records: ReturnType<typeof createEventRecords>;
  readonly reports: ReturnType<typeof createReports>;
  readonly directory: ReturnType<typeof createUserDirectory>;
  /** The audit log as the operator's console reads it. */
  readonly auditTrail: ReturnType<typeof createAuditTrail>;
  /** The live figures of the operator's console (GET /v1/admin/overview). */
  readonly overview: LiveOverview;
  readonly payments: ReturnType<typeof createPayments>;
  /** Stripe and ExtensionPay (core/billing/billing.ts), built by the composition root (it owns the re-sync timer). */
  readonly billing: Billing;
  readonly relaySettings: ReturnType<typeof createRelaySettings>;
  /** NIP-77 delivery audits of the user's relays (POST /v1/me/relays/reconcile). */
  readonly deliveryAudit: DeliveryAudit;
  /** Seconds since the epoch. */
  readonly now: () => number;
  /** The per-IP rate limit (core/quota/rate-limits.ts), shared with the relay's messages; a rejection answers 429. */
  readonly checkIp?: (ip: string) => Promise<Rejection | undefined>;
}

/** What the route files get: the core services plus the API's auth hooks. */
export type ApiServices = ApiDeps & {
  readonly hooks: ReturnType<typeof authHooks>;
  readonly access: ReturnType<typeof accessFor>;
};
