// ExtensionPay accounts: linking a user's ExtPay key (read from ExtPay at once, stored encrypted), and re-reading
// every linked user on a schedule and on request, since ExtPay sends no webhooks. What ExtPay says goes through the
// ledger like any provider's facts. A read that fails (network, timeout, 5xx, an unreadable stored key) changes no
// subscription: it is counted, logged without the key, and retried sooner with a doubling delay.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import {
  claimDueAccounts,
  findAccountOfUser,
  findAccountOfUserWithSecret,
  linkAccount,
  recordSync,
  type BillingAccountWithSecret,
} from '../../store/billing-accounts.js';
import type { Metrics } from '../ops/index.js';
import { BillingError, notConfigured } from './errors.js';
import { extPayFacts, type ExtPayClient } from './extensionpay.js';
import type { BillingLedger, LedgerOutcome } from './ledger.js';
import type { SecretBox } from './secret-box.js';

const PROVIDER = 'extensionpay';

export interface ExtensionPayDeps {
  readonly db: Knex;
  readonly ledger: BillingLedger;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'billingProviderErrors' | 'billingSyncs'> | undefined;
  /** undefined when DATA_ENCRYPTION_KEY is unset. */
  readonly box: SecretBox | undefined;
  /** undefined when EXTENSIONPAY_EXTENSION_ID is unset. */
  readonly client: ExtPayClient | undefined;
  readonly planFor: (nickname: string | null) => string | undefined;
  /** Hours between re-reads of one user; 0 = no schedule. */
  readonly syncHours: number;
  readonly concurrency: number;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly nowMs?: () => number;
  readonly random?: () => number;
}

export type SyncOutcome = 'applied' | 'unavailable' | 'rejected' | 'unmapped' | 'unreadable';

interface LinkResult {
  readonly outcome: LedgerOutcome;
  /** false when the ExtPay user has never paid: linked, and read again later. */
  readonly paid: boolean;
}

export interface ExtensionPay {
  /** The setting that is missing for linking, if any. */
  missingSetting(): string | undefined;
  link(userId: string, apiKey: string): Promise<LinkResult>;
  /** Re-reads the user's linked ExtPay account now; undefined when they have none. */
  refresh(userId: string): Promise<SyncOutcome | undefined>;
  /** Re-reads every account due at `asOf` (default now), `concurrency` at a time; returns the outcomes. */
  syncDue(asOf?: Date): Promise<SyncOutcome[]>;
  start(): void;
  stop(): Promise<void>;
}

const HOUR = 3_600_000;
const FIRST_RETRY_MS = 60_000;
/** How long a claimed account is left alone by other processes while it is being read. */
const LEASE_MS = 10 * 60_000;
const aadOf = (userId: string) => `${PROVIDER}:${userId}`;

export function createExtensionPay(deps: ExtensionPayDeps): ExtensionPay {
  const nowMs = deps.nowMs ?? Date.now;
  const random = deps.random ?? Math.random;
  const periodMs = deps.syncHours * HOUR;
  const log = deps.log.child({ mod: 'extensionpay' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  const missingSetting = () =>
    !deps.client ? 'EXTENSIONPAY_EXTENSION_ID' : !deps.box ? 'DATA_ENCRYPTION_KEY' : undefined;

  /** The next regular read: the period ±10 %, so reads made together drift apart (0 → none scheduled). */
  const nextRegular = (from: number, spread: [number, number] = [0.9, 1.1]): Date | null =>
    periodMs > 0 ? new Date(from + periodMs * (spread[0] + (spread[1] - spread[0]) * random())) : null;
  const nextRetry = (from: number, failures: number): Date =>
    new Date(from + Math.min(FIRST_RETRY_MS * 2 ** failures, periodMs || 6 * HOUR) * (0.75 + 0.25 * random()));

  async function failed(
    account: BillingAccountWithSecret,
    outcome: SyncOutcome,
    reason: string,
    at: number,
  ): Promise<SyncOutcome> {
    deps.metrics?.billingSyncs.inc({ provider: PROVIDER, outcome });
    log.warn(
      { userId: account.userId, outcome, reason, failures: account.syncFailures + 1 },
      'ExtensionPay re-read failed; the subscription is kept as it is',
    );
    await recordSync(deps.db, account.id, {
      ok: false,
      error: `${outcome}: ${reason}`,
      next: nextRetry(at, account.syncFailures),
    });
    return outcome;
  }

  /** One re-read; `at` is the clock of the run (the schedule's next times count from it). */
  async function syncAccount(account: BillingAccountWithSecret, at: number): Promise<SyncOutcome> {
    const { box, client } = deps;
    if (!box || !client || !account.secret)
      return failed(account, 'unreadable', 'ExtensionPay is not configured or the key is missing', at);
    let apiKey: string;
    try {
      apiKey = box.open(account.secret, aadOf(account.userId));
    } catch {
      return failed(account, 'unreadable', 'the stored key does not open with DATA_ENCRYPTION_KEY', at);
    }
    const read = await client.readUser(apiKey);
    if (!read.ok) {
      deps.metrics?.billingProviderErrors.inc({ provider: PROVIDER, operation: 'sync', kind: read.kind });
      return failed(account, read.kind, read.reason, at);
    }
    const mapped = extPayFacts(
      read.user,
      { userId: account.userId, fingerprint: account.providerAccountId, planFor: deps.planFor },
      read.at,
    );
    if (!mapped.ok)
      return failed(
        account,
        'unmapped',
        `the ExtPay plan nickname ${JSON.stringify(mapped.nickname)} is not in EXTENSIONPAY_PLANS`,
        at,
      );
    const outcome = await deps.ledger.record(account.userId, mapped.facts, { actor: PROVIDER });
    deps.metrics?.billingSyncs.inc({ provider: PROVIDER, outcome: 'applied' });
    await recordSync(deps.db, account.id, { ok: true, at: new Date(nowMs()), next: nextRegular(at) });
    if (outcome.applied.some((a) => a !== 'subscription_unchanged' && a !== 'payment_unchanged'))
      log.info({ userId: account.userId, applied: outcome.applied }, 'ExtensionPay state applied');
    return 'applied';
  }

  /** Runs `work` over `items`, at most `limit` at a time. */
  async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
    const out: R[] = [];
    let next = 0;
    const lane = async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        out.push(await work(item));
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
    return out;
  }

  async function syncDue(asOf = new Date(nowMs())): Promise<SyncOutcome[]> {
    if (missingSetting()) return [];
    const at = asOf.getTime();
    const outcomes: SyncOutcome[] = [];
    // Batch after batch until none is due; each account is read at most once per run (its next time is later).
    const seen = new Set<string>();
    for (;;) {
      const batch = (
        await claimDueAccounts(deps.db, PROVIDER, asOf, new Date(at + LEASE_MS), deps.concurrency * 4)
      ).filter((a) => !seen.has(a.id));
      if (batch.length === 0) return outcomes;
      for (const a of batch) seen.add(a.id);
      outcomes.push(
        ...(await bounded(batch, deps.concurrency, (a) =>
          syncAccount(a, at).catch(async (err: unknown) => {
            log.error({ err, userId: a.userId }, 'ExtensionPay re-read could not be applied');
            return failed(a, 'unavailable', 'the facts could not be applied', at);
          }),
        )),
      );
    }
  }

  return {
    missingSetting,
    async link(userId, apiKey) {
      const missing = missingSetting();
      if (missing) throw notConfigured(missing, 'ExtensionPay');
      const box = deps.box as SecretBox;
      const read = await (deps.client as ExtPayClient).readUser(apiKey);
      if (!read.ok) {
        deps.metrics?.billingProviderErrors.inc({ provider: PROVIDER, operation: 'link', kind: read.kind });
        if (read.kind === 'rejected')
          throw new BillingError('key_invalid', `ExtensionPay does not know this key (${read.reason})`);
        log.warn({ userId, reason: read.reason }, 'ExtensionPay unavailable while linking');
        throw new BillingError(
          'provider_unavailable',
          `ExtensionPay could not be reached (${read.reason}); nothing was changed, try again later`,
        );
      }
      const fingerprint = box.fingerprint(apiKey, PROVIDER);
      const mapped = extPayFacts(read.user, { userId, fingerprint, planFor: deps.planFor }, read.at);
      if (!mapped.ok)
        throw new BillingError(
          'plan_unmapped',
          `the ExtPay plan ${JSON.stringify(mapped.nickname)} is not sold here (EXTENSIONPAY_PLANS)`,
        );
      // A new key replaces the user's old one: the old key's subscription ends with the link.
      const previous = await findAccountOfUser(deps.db, userId, PROVIDER);
      const ends =
        previous && previous.providerAccountId !== fingerprint
          ? [{ provider: PROVIDER, providerSubscriptionId: previous.providerAccountId, at: read.at }]
          : [];
      const at = nowMs();
      const outcome = await deps.ledger.record(
        userId,
        { ...mapped.facts, ends },
        {
          actor: 'user',
          takeSlot: true,
          prepare: async (trx) => {
            const linked = await linkAccount(trx, {
              userId,
              provider: PROVIDER,
              providerAccountId: fingerprint,
              secret: box.seal(apiKey, aadOf(userId)),
              nextSyncAt: nextRegular(at, [0.5, 1]) ?? undefined,
              lastSyncedAt: read.at,
            });
            if (!linked.ok)
              throw new BillingError('linked_elsewhere', 'this ExtensionPay user is linked to another account');
          },
        },
      );
      return { outcome, paid: mapped.facts.subscription !== undefined };
    },
    async refresh(userId) {
      if (missingSetting()) return undefined;
      const account = await findAccountOfUserWithSecret(deps.db, userId, PROVIDER);
      return account && syncAccount(account, nowMs());
    },
    syncDue,
    start() {
      if (periodMs <= 0 || timer || missingSetting()) return;
      // Every minute, the accounts that are due: each one's time was spread when it was linked and read.
      const tickMs = Math.min(60_000, periodMs / 10);
      timer = setInterval(() => {
        if (running) return;
        running = syncDue()
          .catch((err: unknown) => log.error({ err }, 'ExtensionPay scheduled re-sync failed'))
          .finally(() => (running = undefined));
      }, tickMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
