// The caller's own account: profile and preferences, the quota, the export of everything we hold, and erasure.
import t from 'tap';
import { changePlan } from '../../src/core/accounts/account-admin.js';
import { signWebhook } from '../../src/core/billing/webhook-signature.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { exportUserRows } from '../../src/store/user-data.js';

const secret = 'whsec_me_test';
const app = await startTestApp(t, { redis: true, env: { PAYMENT_WEBHOOK_SECRET: secret } });
const api = new ApiClient(app.url);
const db = app.db.knex;

t.test('GET /v1/me shows the account with its defaults and plan', async (t) => {
  const alice = newKey();
  const r = await api.signed(alice, 'GET', '/v1/me');
  t.equal(r.status, 200);
  t.match(r.body, {
    pubkey: alice.pk,
    status: 'active',
    plan: 'basic',
    timezone: 'UTC',
    locale: 'en-US',
    data_retention_days: 90,
    analytics_enabled: true,
    marketing_emails: false,
    email: null,
    display_name: null,
  });
});

t.test('PATCH /v1/me changes the preferences, in their canonical form', async (t) => {
  const alice = newKey();
  const r = await api.signed(alice, 'PATCH', '/v1/me', {
    body: {
      display_name: 'Alice',
      email: 'alice@example.com',
      timezone: 'america/new_york',
      locale: 'fr-fr',
      data_retention_days: 30,
      analytics_enabled: false,
      marketing_emails: true,
    },
  });
  t.equal(r.status, 200);
  t.match(r.body, {
    display_name: 'Alice',
    email: 'alice@example.com',
    email_verified: false,
    timezone: 'America/New_York',
    locale: 'fr-FR',
    data_retention_days: 30,
    analytics_enabled: false,
    marketing_emails: true,
  });
  const row = await db('users').where({ nostr_public_key: alice.pk }).first();
  t.match(row, { display_name: 'Alice', timezone: 'America/New_York', locale: 'fr-FR' });
  const cleared = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: null, display_name: null } });
  t.match(cleared.body, { email: null, display_name: null, timezone: 'America/New_York' });
});

t.test('a new timezone moves the quota day at once', async (t) => {
  const alice = newKey();
  await api.signed(alice, 'GET', '/v1/me/quota');
  await api.signed(alice, 'PATCH', '/v1/me', { body: { timezone: 'Pacific/Kiritimati' } });
  const q = await api.signed(alice, 'GET', '/v1/me/quota');
  // Kiritimati is UTC+14: its midnight is 10:00 UTC.
  t.equal(new Date(q.body.daily.resets_at).getUTCHours(), 10);
});

t.test('a timezone or locale that does not exist is a 400 naming the field', async (t) => {
  const alice = newKey();
  let r = await api.signed(alice, 'PATCH', '/v1/me', { body: { timezone: 'Mars/Olympus_Mons' } });
  t.equal(r.status, 400);
  t.same([r.body.error.code, r.body.error.field], ['validation_failed', 'timezone']);
  t.match(r.body.error.message, /not an IANA time zone name/);
  r = await api.signed(alice, 'PATCH', '/v1/me', { body: { locale: 'x-@@' } });
  t.equal(r.status, 400);
  t.equal(r.body.error.field, 'locale');
  const me = await api.signed(alice, 'GET', '/v1/me');
  t.equal(me.body.timezone, 'UTC', 'nothing changed');
});

t.test('GET /v1/me/quota: plan, used, limit, remaining and resets_at, daily and monthly', async (t) => {
  const alice = newKey();
  let r = await api.signed(alice, 'GET', '/v1/me/quota');
  t.equal(r.status, 200);
  t.equal(r.body.plan, 'basic');
  t.match(r.body.daily, { used: 0, limit: 3, remaining: 3 });
  t.equal(
    r.body.daily.resets_at,
    `${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}T00:00:00Z`,
    'UTC midnight',
  );
  t.ok('monthly' in r.body);
  await api.signed(alice, 'POST', '/v1/events', { body: { event: buildEvent(alice.sk) } });
  r = await api.signed(alice, 'GET', '/v1/me/quota');
  t.match(r.body.daily, { used: 1, limit: 3, remaining: 2 });
  const user = await db('users').where({ nostr_public_key: alice.pk }).first('id');
  await changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  r = await api.signed(alice, 'GET', '/v1/me/quota');
  t.equal(r.body.plan, 'advanced');
  t.match(r.body.daily, { used: 1, limit: -1, remaining: -1 });
});

t.test('GET /v1/me/export holds everything we keep about the user, and no secret', async (t) => {
  const alice = newKey();
  const token = await api.session(alice, { browser_name: 'Firefox' });
  await api.bearer(token, 'PATCH', '/v1/me', { body: { email: 'alice@example.com' } });
  const ev = buildEvent(alice.sk, { content: 'exported' });
  await api.bearer(token, 'POST', '/v1/events', {
    body: { event: ev, source: { platform: 'twitter', tweet_id: '42' } },
  });
  const paid = JSON.stringify({
    id: 'evt_me_1',
    type: 'subscription.created',
    data: { pubkey: alice.pk, subscription_id: 'sub_me_1', plan: 'premium' },
  });
  t.equal(
    (
      await api.request('POST', '/v1/webhooks/payments', {
        raw: paid,
        headers: { 'nostrx-signature': signWebhook(paid, secret, Math.floor(Date.now() / 1000)) },
      })
    ).status,
    200,
  );

  const r = await api.bearer(token, 'GET', '/v1/me/export');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-disposition'), /attachment; filename="nostrx-export-/);
  const tables = r.body.tables;
  t.same(
    Object.keys(tables).sort(),
    [
      'audit_log',
      'billing_accounts',
      'daily_usage_stats',
      'email_verifications',
      'lightning_invoices',
      'nostr_events',
      'payments',
      'relay_publishes',
      'usage_events',
      'user_identities',
      'user_quotas',
      'user_relays',
      'user_sessions',
      'user_subscriptions',
      'users',
    ].sort(),
  );
  t.equal(tables.users[0].nostr_public_key, alice.pk);
  t.equal(tables.users[0].email, 'alice@example.com');
  t.equal(tables.nostr_events.length, 1);
  t.equal(tables.nostr_events[0].event_id, ev.id);
  t.equal(tables.nostr_events[0].sig, ev.sig, 'the signature as NIP-01 writes it (stored as its bytes)');
  t.equal(tables.nostr_events[0].original_tweet_id, '42');
  t.equal(tables.user_sessions.length, 1);
  t.equal(tables.user_sessions[0].browser_name, 'Firefox');
  t.equal(tables.user_subscriptions.length, 1);
  t.ok(tables.user_quotas.length >= 1);
  t.ok(tables.audit_log.length >= 1, 'the audit trail about the user');
  t.notOk(r.text.includes('session_token'), 'no token hash');
  t.notOk(r.text.includes(token), 'no token');
});

t.test(
  'a large export is read through a cursor, a batch at a time on one connection, and is the same document',
  async (t) => {
    const bob = newKey();
    const token = await api.session(bob);
    t.equal(
      (await api.bearer(token, 'POST', '/v1/events', { body: { event: buildEvent(bob.sk, { content: 'one' }) } }))
        .status,
      202,
    );
    const { id: userId } = await db('users').where({ nostr_public_key: bob.pk }).first('id');
    // 2,500 audit rows: three cursor batches of the API's 1,000.
    await db.raw(
      `INSERT INTO audit_log (table_name, operation, user_id, new_values, actor, created_at)
     SELECT 'users', 'UPDATE', ?, jsonb_build_object('n', g), 'test', now() + make_interval(secs => g) FROM generate_series(1, 2500) g`,
      [userId],
    );

    const r = await api.bearer(token, 'GET', '/v1/me/export');
    t.equal(r.status, 200);
    t.match(r.headers.get('content-type'), /application\/json/);
    const audit = (r.body.tables.audit_log as { table: string; newValues: { n?: number }; createdAt: string }[]).filter(
      (a) => a.newValues?.n !== undefined,
    );
    t.equal(audit.length, 2500, 'every row, across batches');
    t.same(
      audit.slice(0, 3).map((a) => a.newValues.n),
      [1, 2, 3],
      'in order',
    );
    t.equal(audit[2499]!.newValues.n, 2500);
    t.equal(typeof audit[0]!.createdAt, 'string', 'shown as the audit trail is shown');
    t.equal(r.body.tables.nostr_events.length, 1);

    // The store, with tiny batches: the same rows, no batch larger than asked, one pool connection held.
    const small: Record<string, unknown[]> = {};
    let largest = 0;
    let usedDuring = 0;
    for await (const b of exportUserRows(db, userId, 7)) {
      (small[b.table] ??= []).push(...b.rows);
      largest = Math.max(largest, b.rows.length);
      usedDuring = Math.max(usedDuring, app.db.poolStats().used);
    }
    t.equal(largest, 7);
    t.ok(
      usedDuring >= 1 && usedDuring <= 2,
      `one connection for the whole export, not one per table (plus at most a background flush): ${usedDuring}`,
    );
    t.same(Object.keys(small), Object.keys(r.body.tables), 'every table, in the same order');
    t.equal(small.audit_log!.length, (r.body.tables.audit_log as unknown[]).length);
    t.same(JSON.parse(JSON.stringify(small.nostr_events)), r.body.tables.nostr_events);
    t.ok(app.db.poolStats().used <= 1, 'the transaction is over (its connection is back)');
  },
);

t.test('DELETE /v1/me erases the account and its data; payments stay, anonymous', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@example.com', display_name: 'Alice' } });
  const ev = buildEvent(alice.sk);
  t.equal((await api.signed(alice, 'POST', '/v1/events', { body: { event: ev } })).status, 202);
  const ts = Math.floor(Date.now() / 1000);
  for (const body of [
    {
      id: 'evt_erase_1',
      type: 'subscription.created',
      data: { pubkey: alice.pk, subscription_id: 'sub_erase', plan: 'premium' },
    },
    {
      id: 'evt_erase_2',
      type: 'payment.succeeded',
      data: {
        pubkey: alice.pk,
        subscription_id: 'sub_erase',
        payment_id: 'pay_erase',
        amount: '4.99',
        currency: 'USD',
      },
    },
  ]) {
    const raw = JSON.stringify(body);
    t.equal(
      (
        await api.request('POST', '/v1/webhooks/payments', {
          raw,
          headers: { 'nostrx-signature': signWebhook(raw, secret, ts) },
        })
      ).status,
      200,
    );
  }
  const { id: userId } = await db('users').where({ nostr_public_key: alice.pk }).first('id');

  const bearer = await api.bearer(token, 'DELETE', '/v1/me');
  t.equal(bearer.status, 401, 'a session token cannot erase the account: NIP-98 only');
  const r = await api.signed(alice, 'DELETE', '/v1/me');
  t.equal(r.status, 204);

  t.notOk(await db('users').where({ nostr_public_key: alice.pk }).first(), 'the pubkey is gone');
  const row = await db('users').where({ id: userId }).first();
  t.match(row, { status: 'deleted', email: null, display_name: null });
  t.not(row.nostr_public_key, alice.pk);
  for (const table of ['nostr_events', 'user_sessions', 'user_quotas', 'user_relays', 'daily_usage_stats']) {
    t.equal((await db(table).where({ user_id: userId })).length, 0, `${table} is empty`);
  }
  t.notOk(await db('nostr_events').where({ event_id: ev.id }).first());
  const subs = await db('user_subscriptions').where({ user_id: userId });
  t.same(
    subs.map((s: { status: string }) => s.status),
    ['canceled'],
  );
  t.equal((await db('payments').where({ user_id: userId })).length, 1, 'the payment record is kept for accounting');
  const audit = await db('audit_log').where({ user_id: userId, table_name: 'users', operation: 'DELETE' });
  t.equal(audit.length, 1);

  const again = await api.signed(alice, 'GET', '/v1/me');
  t.equal(again.status, 200, 'the same key later starts a fresh account');
  t.not(again.body.id, userId);
  t.equal(again.body.plan, 'basic');
  t.equal((await api.signed(alice, 'GET', '/v1/events')).body.events.length, 0);
});
