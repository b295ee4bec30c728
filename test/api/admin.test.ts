// Admin routes: NIP-98 by a pubkey in ADMIN_PUBKEYS, 403 for anyone else. Users listed and filtered, plan and
// status changes (audited, in force from the user's next event), and the three reports.
import t from 'tap';
import { signWebhook } from '../../src/core/billing/webhook-signature.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { waitFor } from '../helpers/wait-for.js';

const admin = newKey();
const secret = 'whsec_admin';
const upstream = await startTestApp(t, { env: { POST_KINDS: '9999' } });
const app = await startTestApp(t, {
  redis: true,
  env: {
    ADMIN_PUBKEYS: admin.pk,
    PAYMENT_WEBHOOK_SECRET: secret,
    UPSTREAM_RELAYS: `${upstream.relayUrl},ws://127.0.0.1:9/`,
    ALLOW_PRIVATE_RELAYS: 'true',
    FORWARD_POLL_MS: '50',
    FORWARD_MAX_ATTEMPTS: '1',
    FORWARD_TIMEOUT_MS: '500',
    // the dead relay is here to fail every attempt and be reported: the five events the tests post before the report
    // are five failures when each is sent alone (a loaded machine), which would open its circuit (default 5) and
    // leave the report's own event unsent for a minute
    FORWARD_CIRCUIT_FAILURES: '1000',
  },
});
const api = new ApiClient(app.url);
const db = app.db.knex;
const today = new Date().toISOString().slice(0, 10);

async function idOf(key: Key): Promise<string> {
  await api.signed(key, 'GET', '/v1/me');
  return (await db('users').where({ nostr_public_key: key.pk }).first('id')).id as string;
}

async function pay(key: Key, n: number, plan: string, amount: string) {
  const ts = Math.floor(Date.now() / 1000);
  for (const body of [
    {
      id: `evt_sub_${key.pk.slice(0, 8)}_${n}`,
      type: 'subscription.created',
      data: { pubkey: key.pk, subscription_id: `sub_${key.pk.slice(0, 8)}`, plan, amount },
    },
    {
      id: `evt_pay_${key.pk.slice(0, 8)}_${n}`,
      type: 'payment.succeeded',
      data: {
        pubkey: key.pk,
        subscription_id: `sub_${key.pk.slice(0, 8)}`,
        payment_id: `pay_${key.pk.slice(0, 8)}_${n}`,
        amount,
        currency: 'USD',
      },
    },
  ]) {
    const raw = JSON.stringify(body);
    const r = await api.request('POST', '/v1/webhooks/payments', {
      raw,
      headers: { 'nostrx-signature': signWebhook(raw, secret, ts) },
    });
    if (r.status !== 200) throw new Error(r.text);
  }
}

const adminRoutes = [
  ['GET', '/v1/admin/users'],
  ['GET', '/v1/admin/users/00000000-0000-4000-8000-000000000000'],
  ['PUT', '/v1/admin/users/00000000-0000-4000-8000-000000000000/plan', { plan: 'premium' }],
  ['PUT', '/v1/admin/users/00000000-0000-4000-8000-000000000000/status', { status: 'suspended' }],
  ['GET', '/v1/admin/reports/revenue'],
  ['GET', '/v1/admin/reports/engagement'],
  ['GET', '/v1/admin/reports/relays'],
] as const;

t.test('a non-admin gets 403 on every admin route, and changes nothing', async (t) => {
  const mallory = newKey();
  for (const [method, path, body] of adminRoutes) {
    const r = await api.signed(mallory, method, path, body ? { body } : {});
    t.equal(r.status, 403, `${method} ${path}`);
    t.equal(r.body.error.code, 'not_admin');
  }
  const rpc = await api.signed(mallory, 'POST', '/', {
    body: { method: 'banpubkey', params: [mallory.pk] },
    contentType: 'application/nostr+json+rpc',
  });
  t.equal(rpc.status, 403, 'NIP-86 too');
  t.equal((await db('relay_bans')).length, 0);
});

t.test("an admin's session token is not enough: admin routes take NIP-98 only", async (t) => {
  const token = await api.session(admin);
  const r = await api.bearer(token, 'GET', '/v1/admin/users');
  t.equal(r.status, 401);
  t.equal(r.body.error.check, 'scheme');
});

t.test('unsigned requests to admin routes are 401', async (t) => {
  for (const [method, path, body] of adminRoutes) {
    const r = await api.request(method, path, body ? { body } : {});
    t.equal(r.status, 401, `${method} ${path}`);
  }
});

t.test('the admin lists users, newest first, filtered and paginated', async (t) => {
  const keys = [newKey(), newKey(), newKey()];
  const ids: string[] = [];
  for (const k of keys) ids.push(await idOf(k));
  await api.signed(keys[0] as Key, 'PATCH', '/v1/me', {
    body: { email: 'carol_100%@example.com', display_name: 'Carol' },
  });
  await pay(keys[1] as Key, 1, 'premium', '4.99');

  const page1 = await api.signed(admin, 'GET', '/v1/admin/users?limit=2');
  t.equal(page1.status, 200);
  t.equal(page1.body.users.length, 2);
  t.ok(page1.body.next_cursor);
  const page2 = await api.signed(admin, 'GET', `/v1/admin/users?limit=2&cursor=${page1.body.next_cursor}`);
  const listed = [...page1.body.users, ...page2.body.users].map((u: { id: string }) => u.id);
  t.equal(new Set(listed).size, listed.length, 'no user twice');
  t.same(listed.slice(0, 2), [ids[2], ids[1]], 'newest first');

  const byPubkey = await api.signed(admin, 'GET', `/v1/admin/users?pubkey=${keys[1]?.pk}`);
  t.same(
    byPubkey.body.users.map((u: { id: string; plan: string }) => [u.id, u.plan]),
    [[ids[1], 'premium']],
  );
  const premium = await api.signed(admin, 'GET', '/v1/admin/users?plan=premium&limit=200');
  t.ok(premium.body.users.every((u: { plan: string }) => u.plan === 'premium'));
  t.ok(premium.body.users.some((u: { id: string }) => u.id === ids[1]));
  const search = await api.signed(admin, 'GET', `/v1/admin/users?q=${encodeURIComponent('100%')}`);
  t.same(
    search.body.users.map((u: { id: string }) => u.id),
    [ids[0]],
    'q is a literal substring (% is not a wildcard)',
  );
  const nul = await api.signed(admin, 'GET', `/v1/admin/users?q=${encodeURIComponent('Car\u0000ol')}`);
  t.equal(nul.status, 400, 'a NUL in the query is refused, not sent to the database');
  t.equal(nul.body.error.code, 'validation_failed');
  const single = await api.signed(admin, 'GET', `/v1/admin/users/${ids[0]}`);
  t.match(single.body, {
    id: ids[0],
    pubkey: keys[0]?.pk,
    status: 'active',
    plan: 'basic',
    email: 'carol_100%@example.com',
    display_name: 'Carol',
  });
  const missing = await api.signed(admin, 'GET', '/v1/admin/users/00000000-0000-4000-8000-000000000000');
  t.same([missing.status, missing.body.error.code], [404, 'user_not_found']);
});

t.test("the admin changes a user's plan: audited, and the new limit applies to the next event", async (t) => {
  const bob = newKey();
  const id = await idOf(bob);
  for (let i = 0; i < 3; i++)
    await api.signed(bob, 'POST', '/v1/events', { body: { event: buildEvent(bob.sk, { content: `b${i}` }) } });
  t.equal(
    (await api.signed(bob, 'POST', '/v1/events', { body: { event: buildEvent(bob.sk, { content: 'b3' }) } })).status,
    429,
  );
  const r = await api.signed(admin, 'PUT', `/v1/admin/users/${id}/plan`, { body: { plan: 'premium' } });
  t.equal(r.status, 200);
  t.equal(r.body.plan, 'premium');
  t.equal(
    (await api.signed(bob, 'POST', '/v1/events', { body: { event: buildEvent(bob.sk, { content: 'b4' }) } })).status,
    202,
  );
  const audit = await db('audit_log').where({ user_id: id, table_name: 'user_subscriptions', operation: 'INSERT' });
  t.equal(audit.length, 1);
  t.equal(audit[0].actor, admin.pk, 'the admin pubkey is the actor');
  const unknown = await api.signed(admin, 'PUT', `/v1/admin/users/${id}/plan`, { body: { plan: 'platinum' } });
  t.same([unknown.status, unknown.body.error.code, unknown.body.error.field], [404, 'plan_not_found', 'plan']);
  const nobody = await api.signed(admin, 'PUT', '/v1/admin/users/00000000-0000-4000-8000-000000000000/plan', {
    body: { plan: 'premium' },
  });
  t.same([nobody.status, nobody.body.error.code], [404, 'user_not_found']);
});

t.test('the admin suspends a user: their next event is refused; reactivated, it passes', async (t) => {
  const eve = newKey();
  const id = await idOf(eve);
  let r = await api.signed(admin, 'PUT', `/v1/admin/users/${id}/status`, { body: { status: 'suspended' } });
  t.same([r.status, r.body.status], [200, 'suspended']);
  const refused = await api.signed(eve, 'POST', '/v1/events', { body: { event: buildEvent(eve.sk) } });
  t.same([refused.status, refused.body.error.message], [403, 'blocked: this account is suspended']);
  const listed = await api.signed(admin, 'GET', '/v1/admin/users?status=suspended&limit=200');
  t.ok(listed.body.users.some((u: { id: string }) => u.id === id));
  r = await api.signed(admin, 'PUT', `/v1/admin/users/${id}/status`, { body: { status: 'active' } });
  t.equal(r.body.status, 'active');
  t.equal((await api.signed(eve, 'POST', '/v1/events', { body: { event: buildEvent(eve.sk) } })).status, 202);
  const audit = await db('audit_log').where({ user_id: id, table_name: 'users' }).orderBy('created_at');
  t.same(
    audit.map((a: { new_values: { status: string }; actor: string }) => [a.new_values.status, a.actor]),
    [
      ['suspended', admin.pk],
      ['active', admin.pk],
    ],
  );
  await api.signed(admin, 'PUT', `/v1/admin/users/${id}/status`, { body: { status: 'deleted' } });
  const closed = await api.signed(eve, 'GET', '/v1/me');
  t.same([closed.status, closed.body.error.code], [403, 'account_unavailable'], 'a deleted account cannot use the API');
  const bad = await api.signed(admin, 'PUT', `/v1/admin/users/${id}/status`, { body: { status: 'banished' } });
  t.same([bad.status, bad.body.error.field], [400, 'status']);
});

t.test('revenue by day and plan', async (t) => {
  await pay(newKey(), 1, 'premium', '4.99');
  await pay(newKey(), 1, 'advanced', '9.99');
  const r = await api.signed(admin, 'GET', '/v1/admin/reports/revenue');
  t.equal(r.status, 200);
  t.equal(r.body.to, today);
  const todays = r.body.rows.filter((x: { date: string }) => x.date === today);
  const premium = todays.find((x: { plan: string }) => x.plan === 'premium');
  const advanced = todays.find((x: { plan: string }) => x.plan === 'advanced');
  t.match(
    premium,
    { currency: 'USD', payments: 2, revenue: '9.98', average_payment: '4.99' },
    'two premium payments today (this and the listing test)',
  );
  t.match(advanced, { currency: 'USD', payments: 1, revenue: '9.99' });
  const old = await api.signed(admin, 'GET', '/v1/admin/reports/revenue?from=2020-01-01&to=2020-12-31');
  t.same(old.body.rows, []);
});

t.test('engagement by plan', async (t) => {
  const k = newKey();
  const id = await idOf(k);
  await db('daily_usage_stats').insert({
    user_id: id,
    stat_date: today,
    total_posts: 10,
    successful_posts: 9,
    failed_posts: 1,
  });
  const r = await api.signed(admin, 'GET', '/v1/admin/reports/engagement');
  t.equal(r.status, 200);
  const basic = r.body.rows.find((x: { plan: string }) => x.plan === 'basic');
  t.ok(basic, 'free users are counted under basic');
  t.ok(basic.active_users >= 1);
  t.ok(basic.total_posts >= 10);
  t.equal(
    basic.success_rate,
    Math.round((10_000 * basic.successful_posts) / basic.total_posts) / 100,
    'a percentage, as every success rate the API gives',
  );
});

t.test('relay performance', async (t) => {
  const k = newKey();
  const ev = buildEvent(k.sk);
  t.equal((await api.signed(k, 'POST', '/v1/events', { body: { event: ev } })).status, 202);
  await waitFor(
    'an outcome at both relays',
    async () => {
      const rows = (await api.signed(k, 'GET', `/v1/events/${ev.id}`)).body.relays as { status: string }[];
      return rows.length === 2 && rows.every((x) => ['published', 'failed', 'timeout', 'rejected'].includes(x.status));
    },
    15_000,
  );
  const r = await api.signed(admin, 'GET', '/v1/admin/reports/relays');
  t.equal(r.status, 200);
  const good = r.body.rows.find((x: { relay_url: string }) => x.relay_url === upstream.relayUrl);
  const dead = r.body.rows.find((x: { relay_url: string }) => x.relay_url === 'ws://127.0.0.1:9/');
  t.ok(good && dead, 'both upstream relays are in the report');
  t.equal(good.success_rate, 100);
  t.type(good.avg_publish_time_ms, 'number');
  t.equal(dead.published, 0);
  t.equal(r.body.rows[0].relay_url, upstream.relayUrl, 'best first');
});

t.test('report ranges are validated', async (t) => {
  const r = await api.signed(admin, 'GET', '/v1/admin/reports/revenue?from=2026-13-01');
  t.same([r.status, r.body.error.field], [400, 'from']);
});
