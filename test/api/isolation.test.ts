// A user's data is never visible to another user through any route. Alice fills every table the API shows; Bob, on
// the same plan, calls every route a user may call, with NIP-98 and with a session, and tries Alice's ids in every
// route that takes one: nothing of Alice's comes back, and nothing of hers changes.
import t, { type Test } from 'tap';
import { changePlan } from '../../src/core/accounts/account-admin.js';
import { signWebhook } from '../../src/core/billing/webhook-signature.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient, type Reply } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';

const secret = 'whsec_isolation';
const app = await startTestApp(t, { redis: true, env: { PAYMENT_WEBHOOK_SECRET: secret } });
const api = new ApiClient(app.url);
const db = app.db.knex;
const alice = newKey();
const bob = newKey();

async function premium(key: Key): Promise<string> {
  await api.signed(key, 'GET', '/v1/me');
  const { id } = await db('users').where({ nostr_public_key: key.pk }).first('id');
  await changePlan(app.accountAdmin, id, 'premium', 'test');
  return id as string;
}

// Alice's data, everywhere.
const aliceId = await premium(alice);
const bobId = await premium(bob);
const aliceToken = await api.session(alice, { browser_name: 'AliceBrowser' });
await api.bearer(aliceToken, 'PATCH', '/v1/me', {
  body: { email: 'alice.secret@example.com', display_name: 'Alice Secret' },
});
const aliceEvents = [buildEvent(alice.sk, { content: 'alice one' }), buildEvent(alice.sk, { content: 'alice two' })];
for (const ev of aliceEvents)
  await api.bearer(aliceToken, 'POST', '/v1/events', {
    body: { event: ev, source: { platform: 'twitter', tweet_id: '777', username: 'alice_x' } },
  });
const aliceRelay = (
  await api.bearer(aliceToken, 'POST', '/v1/relays', { body: { url: 'wss://9.9.9.10', name: 'alice-relay' } })
).body;
const aliceSessionId = (await api.bearer(aliceToken, 'GET', '/v1/sessions')).body.sessions[0].id as string;
for (const body of [
  {
    id: 'evt_iso_1',
    type: 'subscription.created',
    data: { pubkey: alice.pk, subscription_id: 'sub_alice_iso', plan: 'advanced' },
  },
  {
    id: 'evt_iso_2',
    type: 'payment.succeeded',
    data: {
      pubkey: alice.pk,
      subscription_id: 'sub_alice_iso',
      payment_id: 'pay_alice_iso',
      amount: '9.99',
      currency: 'USD',
      receipt_url: 'https://pay.example/alice',
    },
  },
]) {
  const raw = JSON.stringify(body);
  await api.request('POST', '/v1/webhooks/payments', {
    raw,
    headers: { 'nostrx-signature': signWebhook(raw, secret, Math.floor(Date.now() / 1000)) },
  });
}
// Upserted: the usage recorder may already have written today's row for her two posts.
await db('daily_usage_stats')
  .insert({ user_id: aliceId, stat_date: new Date().toISOString().slice(0, 10), total_posts: 42 })
  .onConflict(['user_id', 'stat_date'])
  .merge({ total_posts: db.raw('daily_usage_stats.total_posts + 42') });
const aliceSub = await db('user_subscriptions').where({ user_id: aliceId, status: 'active' }).first('id');
const alicePayment = await db('payments').where({ user_id: aliceId }).first('id');

const secrets = [
  alice.pk,
  aliceId,
  aliceToken,
  aliceSessionId,
  'alice.secret@example.com',
  'Alice Secret',
  'AliceBrowser',
  ...aliceEvents.map((e) => e.id),
  'alice one',
  'alice_x',
  aliceRelay.id,
  'wss://9.9.9.10',
  'alice-relay',
  aliceSub.id,
  alicePayment.id,
  'pay.example/alice',
];

function nothingOfAlice(t: Test, r: Reply, what: string): void {
  for (const s of secrets) t.notOk(r.text.includes(s), `${what} does not show ${s.slice(0, 24)}`);
}

const bobGets = [
  '/v1/me',
  '/v1/me/quota',
  '/v1/me/export',
  '/v1/events',
  '/v1/events?limit=200',
  '/v1/relays',
  '/v1/stats',
  '/v1/subscription',
  '/v1/sessions',
];

t.test("Bob's reads show nothing of Alice's, with NIP-98", async (t) => {
  for (const path of bobGets) {
    const r = await api.signed(bob, 'GET', path);
    t.equal(r.status, 200, path);
    nothingOfAlice(t, r, path);
  }
});

t.test("Bob's reads show nothing of Alice's, with a session", async (t) => {
  const bobToken = await api.session(bob);
  for (const path of bobGets) {
    const r = await api.bearer(bobToken, 'GET', path);
    t.equal(r.status, 200, path);
    nothingOfAlice(t, r, path);
  }
});

t.test("Bob's tries at Alice's ids are refused and show nothing", async (t) => {
  const tries: [string, string, unknown, number][] = [
    ['GET', `/v1/events/${aliceEvents[0]?.id}`, undefined, 403],
    ['PATCH', `/v1/relays/${aliceRelay.id}`, { name: 'bob was here', is_active: false }, 404],
    ['DELETE', `/v1/relays/${aliceRelay.id}`, undefined, 404],
    ['DELETE', `/v1/sessions/${aliceSessionId}`, undefined, 404],
  ];
  for (const [method, path, body, status] of tries) {
    const r = await api.signed(bob, method, path, body ? { body } : {});
    t.equal(r.status, status, `${method} ${path}`);
    nothingOfAlice(t, r, `${method} ${path}`);
  }
  const resend = await api.signed(bob, 'POST', '/v1/events', { body: { event: aliceEvents[0] } });
  t.equal(resend.status, 403, "re-publishing Alice's event as Bob is refused");
  nothingOfAlice(t, resend, 'POST /v1/events');
});

t.test("Alice's data is intact", async (t) => {
  t.equal((await api.bearer(aliceToken, 'GET', '/v1/me')).status, 200, 'her session still works');
  const relays = await api.bearer(aliceToken, 'GET', '/v1/relays');
  t.match(relays.body.relays, [{ id: aliceRelay.id, name: 'alice-relay', is_active: true }]);
  const events = await api.bearer(aliceToken, 'GET', '/v1/events');
  t.equal(events.body.events.length, 2);
  const me = await api.bearer(aliceToken, 'GET', '/v1/me');
  t.equal(me.body.email, 'alice.secret@example.com');
  const sub = await api.bearer(aliceToken, 'GET', '/v1/subscription');
  t.equal(sub.body.subscription.id, aliceSub.id);
  t.equal(sub.body.payments[0].id, alicePayment.id);
  const stats = await api.bearer(aliceToken, 'GET', '/v1/stats');
  t.ok(
    stats.body.totals.total_posts >= 42,
    'her stats (the 42 seeded, plus her posts once the usage recorder flushes)',
  );
  const sessions = await api.bearer(aliceToken, 'GET', '/v1/sessions');
  t.equal(sessions.body.sessions[0].id, aliceSessionId);
});

t.test("Bob's export holds Bob's rows only", async (t) => {
  const r = await api.signed(bob, 'GET', '/v1/me/export');
  for (const [table, rows] of Object.entries(r.body.tables as Record<string, Record<string, unknown>[]>)) {
    for (const row of rows) {
      if ('user_id' in row) t.equal(row.user_id, bobId, `${table} row is Bob's`);
    }
  }
  t.same(
    r.body.tables.users.map((u: { id: string }) => u.id),
    [bobId],
  );
});
