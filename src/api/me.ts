// The caller's own account: GET/PATCH /v1/me, GET /v1/me/export (everything we hold about them) and DELETE /v1/me
// (erasure; NIP-98 by the account's primary key only, so neither a leaked session token nor a linked key can erase
// an account). Setting an email sends its verification link (api/email.ts); the profile shows the retention period
// and what it applies to.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { retentionScope, type Caller, type ExportBatch, type Profile } from '../core/accounts/index.js';
import { callerOf } from './auth.js';
import { sendView } from './email.js';
import { apiError } from './errors.js';
import { reasonOf } from '../nips/result.js';
import type { ApiServices } from './services.js';

interface PatchBody {
  display_name?: string | null;
  email?: string | null;
  timezone?: string;
  locale?: string;
  data_retention_days?: number;
  analytics_enabled?: boolean;
  marketing_emails?: boolean;
}

// The users.valid_email CHECK, so that what passes here is never refused by the database.
const EMAIL = '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$';

/** What the retention period applies to, with the period itself: shown by GET /v1/me and the export. */
function dataRetentionView(days: number) {
  const summary =
    days === 0
      ? 'nothing is erased by age: your data is kept until you erase your account (DELETE /v1/me)'
      : `what is listed under "erased" is erased once older than ${days} days, checked hourly`;
  return { days, summary, erased: retentionScope.erased, kept: retentionScope.kept };
}

function profileView(p: Profile, plan: string, caller: Caller, emailVerificationAvailable: boolean, admin: boolean) {
  return {
    id: p.id,
    pubkey: p.pubkey,
    signed_in_pubkey: caller.pubkey,
    status: p.status,
    plan,
    admin,
    display_name: p.displayName,
    email: p.email,
    email_verified: p.emailVerified,
    email_verification_available: emailVerificationAvailable,
    avatar_url: p.avatarUrl,
    timezone: p.timezone,
    locale: p.locale,
    data_retention_days: p.dataRetentionDays,
    data_retention: dataRetentionView(p.dataRetentionDays),
    analytics_enabled: p.analyticsEnabled,
    marketing_emails: p.marketingEmails,
    created_at: p.createdAt,
    last_active_at: p.lastActiveAt,
  };
}

export function registerMeRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, profiles, plans, emailVerification } = deps;
  const admins = new Set(deps.config.adminPubkeys);
  const view = async (p: Profile | undefined, caller: Caller) => {
    if (!p) throw apiError('user_not_found', 'your account no longer exists');
    // admin by the key that signed in: the operator console's routes check that key
    return profileView(
      p,
      (await plans.effectivePlan(p.id)).code,
      caller,
      emailVerification.available,
      admins.has(caller.pubkey),
    );
  };

  http.get(
    '/v1/me',
    access('user', {
      tags: ['account'],
      summary: 'Your account, preferences and plan',
      response: { 200: { $ref: 'Profile#' } },
    }),
    async (req) => {
      const caller = callerOf(req);
      return view(await profiles.get(caller.user.id), caller);
    },
  );

  http.patch<{ Body: PatchBody }>(
    '/v1/me',
    access('user', {
      tags: ['account'],
      summary: 'Change your display name, email, timezone, locale and privacy preferences',
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          display_name: { type: ['string', 'null'], minLength: 1, maxLength: 100 },
          email: {
            type: ['string', 'null'],
            maxLength: 320,
            pattern: EMAIL,
            description: 'A new address is unverified until the link emailed to it is opened',
          },
          timezone: {
            type: 'string',
            minLength: 1,
            maxLength: 50,
            description: 'IANA time zone name, e.g. Europe/Paris; your quota day starts at its midnight',
          },
          locale: { type: 'string', minLength: 2, maxLength: 10, description: 'BCP 47 tag, e.g. en-US' },
          data_retention_days: {
            type: 'integer',
            minimum: 0,
            maximum: 3650,
            description:
              'Days your activity is kept (see data_retention in the answer); 0 keeps it until you erase your account. A shorter period erases the older data at the next hourly run',
          },
          analytics_enabled: { type: 'boolean' },
          marketing_emails: { type: 'boolean' },
        },
      },
      response: { 200: { $ref: 'Profile#' } },
    }),
    async (req) => {
      const caller = callerOf(req);
      const b = req.body;
      const result = await profiles.update(caller.user.id, caller.pubkey, {
        displayName: b.display_name,
        email: b.email,
        timezone: b.timezone,
        locale: b.locale,
        dataRetentionDays: b.data_retention_days,
        analyticsEnabled: b.analytics_enabled,
        marketingEmails: b.marketing_emails,
      });
      if (!result.ok) {
        const field = result.field ?? 'body';
        throw apiError('validation_failed', `body.${field}: ${reasonOf(result.rejection)}`, {
          field,
          location: 'body',
        });
      }
      const profile = await view(result.value, caller);
      if (typeof b.email !== 'string') return profile;
      // A new address (or the same one, still unverified) gets its link now; the answer says what became of it.
      if (profile.email_verified)
        return {
          ...profile,
          email_verification: { status: 'already_verified', message: 'this address is already verified' },
        };
      return { ...profile, email_verification: sendView(await emailVerification.send(caller.user.id, b.email)) };
    },
  );

  http.get(
    '/v1/me/export',
    access('user', {
      tags: ['account'],
      summary: 'Everything we hold about you, table by table, as stored',
      response: {
        200: {
          type: 'object',
          required: ['exported_at', 'data_retention', 'tables'],
          properties: {
            exported_at: { type: 'string', format: 'date-time' },
            data_retention: { $ref: 'DataRetention#' },
            tables: { type: 'object', additionalProperties: { type: 'array', items: {} } },
          },
        },
      },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      const profile = await profiles.get(caller.user.id);
      if (!profile) throw apiError('user_not_found', 'your account no longer exists');
      const document = exportDocument(
        new Date(deps.now() * 1000),
        dataRetentionView(profile.dataRetentionDays),
        profiles.export(caller.user.id),
      );
      return reply
        .header('Content-Type', 'application/json; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="nostrx-export-${caller.pubkey.slice(0, 12)}.json"`)
        .header('Cache-Control', 'no-store')
        .send(Readable.from(document));
    },
  );

  http.delete(
    '/v1/me',
    access('signed', {
      tags: ['account'],
      summary: "Erase your account and its data (NIP-98 by the account's primary key)",
      description:
        'Deletes your events, relays, sessions, quota ledger, stats and usage, cancels your subscription, and removes your pubkey and ' +
        'personal fields. Subscription and payment records are kept (accounting law) without anything that identifies you.',
      response: { 204: { type: 'null' } },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      if (caller.pubkey !== caller.user.pubkey) {
        throw apiError(
          'primary_key_required',
          "only the account's primary key may erase it; a linked key may unlink itself (DELETE /v1/me/identities/:pubkey)",
        );
      }
      if (!(await profiles.erase(caller.user.id, caller.pubkey))) throw apiError('user_not_found');
      return reply.code(204).send();
    },
  );
}

/**
 * The export as one JSON document, `{"exported_at": …, "data_retention": {…}, "tables": {"<table>": [rows…], …}}`,
 * written a batch of rows at a time as they are read (the response schema above describes it; a stream is not
 * serialized by fastify). data_retention says which of the tables the user's retention period erases.
 */
async function* exportDocument(
  exportedAt: Date,
  retention: unknown,
  batches: AsyncIterable<ExportBatch>,
): AsyncGenerator<string> {
  yield `{"exported_at":${JSON.stringify(exportedAt)},"data_retention":${JSON.stringify(retention)},"tables":{`;
  let table: string | null = null;
  let written = 0;
  for await (const batch of batches) {
    if (batch.table !== table) {
      yield `${table === null ? '' : '],'}${JSON.stringify(batch.table)}:[`;
      table = batch.table;
      written = 0;
    }
    if (batch.rows.length === 0) continue;
    yield `${written > 0 ? ',' : ''}${batch.rows.map((row) => JSON.stringify(row)).join(',')}`;
    written += batch.rows.length;
  }
  yield table === null ? '}}' : ']}}';
}
