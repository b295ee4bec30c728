// Tier quotas through the relay, with real PostgreSQL and Redis and a fixed clock: basic (3 a day), premium (25)
// and advanced (unlimited) users up to and over their limits; what is never charged (free kinds, duplicates,
// invalid and superseded events); suspension; a plan change in the middle of the day; usage rows.
import t from 'tap';
import { Redis } from 'ioredis';
import { startTestApp } from '../../helpers/app.js';
import { testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';
import { waitFor } from '../../helpers/wait-for.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { changePlan, quotaStatus, setUserStatus } from '../../../src/core/accounts/account-admin.js';

// The clock stands still at noon (UTC) today: dates relative to now, so the rows land in months whose partitions
// exist (the service creates them ahead of its clock), whatever day the test runs.
const today = new Date();
const [year, month, date] = [today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()];
const clock = Date.UTC(year, month, date, 12) / 1000;
const instant = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const tomorrow = instant(Date.UTC(year, month, date + 1));
const nextMonth = instant(Date.UTC(year, month + 1, 1));
const prefix = testRedisPrefix(t);
const app = await startTestApp(t, { redis: prefix, now: () => clock });
const redis = new Redis(testRedisUrl);
t.teardown(() => redis.disconnect());
// One client for the whole file, closed by the last test: a connection still open when the app stops makes the
// shutdown wait for the WebSocket close timeout.
const client = await RawClient.connect(app.relayUrl);

let seq = 0;
const note = (k: Key, kind = 1, extra: { tags?: string[][]; created_at?: number } = {}) =>
  buildEvent(k.sk, { kind, created_at: extra.created_at ?? clock, content: `post ${++seq}`, tags: extra.tags ?? [] });
const publish = (k: Key, kind = 1) => client.publish(note(k, kind));

async function userId(k: Key): Promise<string> {
  const u = await app.accounts.forPubkey(k.pk);
  return u.id;
}

async function ledger(k: Key): Promise<number> {
  const row = (await app.db
    .knex('user_quotas')
    .where({ user_id: await userId(k), quota_type: 'daily' })
    .first('posts_used')) as { posts_used: number } | undefined;
  return row?.posts_used ?? 0;
}

/** The Redis key of the user's daily counter for today (store/quota-counters.ts). */
async function dailyCounter(k: Key): Promise<string> {
  return `${prefix}quota:{${await userId(k)}}:d:${instant(Date.UTC(year, month, date)).slice(0, 10)}`;
}

const basicFull = `rate-limited: daily limit of 3 posts reached on the basic plan; resets at ${tomorrow}`;

t.test(
  'a basic user publishes 3 notes a day; the 4th and later are refused naming the limit and the reset',
  async (t) => {
    const alice = newKey();
    for (let i = 0; i < 3; i++) t.same(await publish(alice), [true, ''], `note ${i + 1} accepted`);
    t.same(await publish(alice), [false, basicFull]);
    t.same(await publish(alice, 6), [false, basicFull], 'a repost counts too');
    t.same(await publish(alice, 30023), [false, basicFull], 'a long-form article counts too');
    t.equal(await ledger(alice), 3, 'the ledger holds exactly 3');
    const { events } = await client.req('a', { authors: [alice.pk] });
    t.equal(events.length, 3, 'nothing refused was stored');
  },
);

t.test("a new author's first post takes no hold; the counters learn its count after it", async (t) => {
  const carol = newKey();
  t.same(await publish(carol), [true, '']);
  const counter = await dailyCounter(carol);
  const used = await waitFor(
    'the count of the first post in Redis',
    async () => (await redis.hget(counter, 'u')) ?? undefined,
  );
  t.equal(used, '1');
  t.equal(await redis.exists(`${counter}:h`), 0, 'no hold was ever taken');
  for (let i = 0; i < 2; i++) t.same(await publish(carol), [true, '']);
  t.same(await publish(carol), [false, basicFull], 'the next posts counted from there');
  t.equal(await ledger(carol), 3);
});

t.test('a post whose counter is missing (first of the day, or Redis lost it) takes no hold either', async (t) => {
  const erin = newKey();
  t.same(await publish(erin), [true, '']);
  const counter = await dailyCounter(erin);
  await waitFor('the first count in Redis', async () => (await redis.hget(counter, 'u')) ?? undefined);
  await redis.del(counter);
  t.same(await publish(erin), [true, ''], 'accepted without a counter');
  t.equal(await waitFor('the count made again', async () => (await redis.hget(counter, 'u')) ?? undefined), '2');
  t.equal(await redis.exists(`${counter}:h`), 0, 'no hold was taken');
  t.same(await publish(erin), [true, '']);
  await redis.del(counter);
  t.same(await publish(erin), [false, basicFull], 'at the limit without a counter: the ledger refuses');
  t.equal(await waitFor('the count at the limit', async () => (await redis.hget(counter, 'u')) ?? undefined), '3');
  t.equal(await ledger(erin), 3);
});

t.test("a new author's first posts all at once: exactly the plan's 3 accepted", async (t) => {
  const dave = newKey();
  const clients = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect(app.relayUrl)));
  t.teardown(() => clients.forEach((c) => c.close()));
  const answers = await Promise.all(clients.map((c) => c.publish(note(dave))));
  t.equal(answers.filter(([ok]) => ok).length, 3);
  t.ok(answers.filter(([ok]) => !ok).every(([, m]) => m.startsWith('rate-limited: daily limit of 3 posts')));
  t.equal(await ledger(dave), 3);
});

t.test('a premium user publishes 25; an advanced user is never refused', async (t) => {
  const bob = newKey();
  await changePlan(app.accountAdmin, await userId(bob), 'premium', 'test');
  for (let i = 0; i < 25; i++) t.same(await publish(bob), [true, '']);
  t.same(await publish(bob), [
    false,
    `rate-limited: daily limit of 25 posts reached on the premium plan; resets at ${tomorrow}`,
  ]);
  t.equal(await ledger(bob), 25);

  const carol = newKey();
  await changePlan(app.accountAdmin, await userId(carol), 'advanced', 'test');
  const answers = [];
  for (let i = 0; i < 40; i++) answers.push(await publish(carol));
  t.ok(
    answers.every(([ok]) => ok),
    '40 of 40 accepted',
  );
  t.equal(await ledger(carol), 40, 'unlimited posts are still counted');
});

t.test('free kinds are never charged, and still accepted at the limit', async (t) => {
  const dave = newKey();
  const free = [0, 3, 7, 10002, 1984, 20001];
  for (const kind of free) t.same((await publish(dave, kind))[0], true, `kind ${kind} accepted`);
  t.equal(await ledger(dave), 0, 'nothing charged');
  for (let i = 0; i < 3; i++) t.same(await publish(dave), [true, '']);
  t.same(await publish(dave), [false, basicFull]);
  t.same(await publish(dave, 7), [true, ''], 'a reaction at the limit is accepted');
  const target = note(dave);
  const deletion = buildEvent(dave.sk, { kind: 5, created_at: clock, tags: [['e', target.id]] });
  t.same(await client.publish(deletion), [true, ''], 'a deletion at the limit is accepted');
  t.equal(await ledger(dave), 3);
});

t.test('duplicates, retries, invalid and superseded events are never charged', async (t) => {
  const erin = newKey();
  const first = note(erin);
  t.same(await client.publish(first), [true, '']);
  t.same(await client.publish(first), [true, 'duplicate: already have this event'], 'a retry is answered duplicate');
  t.equal(await ledger(erin), 1, 'the retry cost nothing');

  const bad = { ...note(erin), sig: 'f'.repeat(128) };
  t.same(await client.publish(bad), [false, 'invalid: signature is invalid']);
  t.equal(await ledger(erin), 1, 'an invalid event costs nothing');

  const article = note(erin, 30023, { tags: [['d', 'essay']] });
  t.same(await client.publish(article), [true, '']);
  const older = note(erin, 30023, { tags: [['d', 'essay']], created_at: clock - 60 });
  t.same(await client.publish(older), [true, 'duplicate: a newer version of this event is already stored']);
  t.equal(await ledger(erin), 2, 'a superseded version costs nothing');

  t.same(await publish(erin), [true, '']);
  t.same(await publish(erin), [false, basicFull]);
  t.same(
    await client.publish(first),
    [true, 'duplicate: already have this event'],
    'a retry at the limit is still duplicate',
  );
  t.equal(await ledger(erin), 3);
});

t.test('a suspended user is blocked, and can publish again once reactivated', async (t) => {
  const frank = newKey();
  t.same(await publish(frank), [true, '']);
  const id = await userId(frank);
  t.same(await setUserStatus(app.accountAdmin, id, 'suspended', 'admin'), {
    previous: 'active',
    current: 'suspended',
    changed: true,
  });
  t.same(await publish(frank), [false, 'blocked: this account is suspended']);
  t.same(await publish(frank, 7), [false, 'blocked: this account is suspended'], 'free kinds too');
  await setUserStatus(app.accountAdmin, id, 'active', 'admin');
  t.same(await publish(frank), [true, '']);
  t.equal(await ledger(frank), 2);
  const audit = await app.db
    .knex('audit_log')
    .where({ user_id: id, table_name: 'users' })
    .orderBy('created_at')
    .select('actor', 'new_values');
  t.same(
    audit.map((a: { actor: string; new_values: { status: string } }) => [a.actor, a.new_values.status]),
    [
      ['admin', 'suspended'],
      ['admin', 'active'],
    ],
  );
});

t.test('a plan change in the middle of the day applies the new limit to the posts already counted', async (t) => {
  const gina = newKey();
  const id = await userId(gina);
  for (let i = 0; i < 3; i++) await publish(gina);
  t.same(await publish(gina), [false, basicFull]);
  t.same(await changePlan(app.accountAdmin, id, 'premium', 'payments'), {
    previous: 'basic',
    current: 'premium',
    changed: true,
    subscriptionId: (await app.db.knex('user_subscriptions').where({ user_id: id, status: 'active' }).first('id')).id,
  });
  t.same(await publish(gina), [true, ''], 'the 4th post of the day is accepted on premium');
  t.same(await publish(gina), [true, '']);
  t.equal(await ledger(gina), 5);
  t.same((await quotaStatus(app.accountAdmin, await app.accounts.forPubkey(gina.pk))).daily, {
    used: 5,
    limit: 25,
    remaining: 20,
    resets_at: tomorrow,
  });

  const down = await changePlan(app.accountAdmin, id, 'basic', 'admin');
  t.same(down, { previous: 'premium', current: 'basic', changed: true, subscriptionId: null });
  const [ok, message] = await publish(gina);
  t.equal(ok, false);
  t.equal(message, basicFull, 'downgraded below today’s count: refused at once');
  t.equal(await ledger(gina), 5);
  const subs = await app.db.knex('user_subscriptions').where({ user_id: id }).select('status');
  t.same(subs.map((s: { status: string }) => s.status).sort(), ['canceled'], 'the premium row is kept as history');
  t.same(
    await changePlan(app.accountAdmin, id, 'basic', 'admin'),
    { previous: 'basic', current: 'basic', changed: false, subscriptionId: null },
    'a no-op is reported as such',
  );
});

t.test('quotaStatus reports the plan, the counts and the resets', async (t) => {
  const hank = newKey();
  await publish(hank);
  const user = await app.accounts.forPubkey(hank.pk);
  t.same(await quotaStatus(app.accountAdmin, user), {
    plan: 'basic',
    daily: { used: 1, limit: 3, remaining: 2, resets_at: tomorrow },
    monthly: null,
  });
  await changePlan(app.accountAdmin, user.id, 'advanced', 'test');
  t.same((await quotaStatus(app.accountAdmin, user)).daily, { used: 1, limit: -1, remaining: -1, resets_at: tomorrow });
});

t.test('a plan with a monthly limit refuses at that limit, with its own message', async (t) => {
  await app.db.knex('subscription_plans').insert({
    plan_code: 'monthly10',
    name: 'Monthly',
    price_monthly: '1.00',
    daily_post_limit: -1,
    monthly_post_limit: 4,
  });
  app.invalidation.allPlans();
  const ivy = newKey();
  await changePlan(app.accountAdmin, await userId(ivy), 'monthly10', 'test');
  for (let i = 0; i < 4; i++) t.same(await publish(ivy), [true, '']);
  t.same(await publish(ivy), [
    false,
    `rate-limited: monthly limit of 4 posts reached on the monthly10 plan; resets at ${nextMonth}`,
  ]);
  const rows = await app.db
    .knex('user_quotas')
    .where({ user_id: await userId(ivy) })
    .orderBy('quota_type')
    .select('quota_type', 'posts_used', 'posts_limit');
  t.same(rows, [
    { quota_type: 'daily', posts_used: 4, posts_limit: -1 },
    { quota_type: 'monthly', posts_used: 4, posts_limit: 4 },
  ]);
});

t.test('the API face gets the same refusal with the quota facts for its 429', async (t) => {
  const jo = newKey();
  for (let i = 0; i < 3; i++) await publish(jo);
  const r = await app.admit(note(jo), { via: 'api', authed: new Set([jo.pk]) });
  t.equal(r.status, 'rejected');
  if (r.status !== 'rejected') return;
  t.equal(r.rejection.message, basicFull);
  t.same(r.quota, { plan: 'basic', period: 'daily', limit: 3, used: 3, resetsAt: tomorrow });
});

t.test('usage_events and daily_usage_stats are written in batches', async (t) => {
  const kim = newKey();
  for (let i = 0; i < 5; i++) await publish(kim);
  await app.usage.flush();
  const id = await userId(kim);
  const events = (await app.db
    .knex('usage_events')
    .where({ user_id: id })
    // the clock stands still, so every row has the same occurred_at: the count orders a user's charges
    .orderBy(['occurred_at', 'posts_used_after'])
    .select('event_type', 'posts_used_before', 'posts_used_after', 'quota_limit', 'event_data')) as {
    event_type: string;
    posts_used_before: number | null;
    posts_used_after: number | null;
    quota_limit: number | null;
    event_data: { attempts?: number };
  }[];
  const byType = (type: string) => events.filter((e) => e.event_type === type);
  t.same(
    byType('quota_usage').map((e) => [e.posts_used_before, e.posts_used_after, e.quota_limit]),
    [
      [0, 1, 3],
      [1, 2, 3],
      [2, 3, 3],
    ],
  );
  t.equal(byType('post_success').length, 0, 'a stored post is one row: its charge');
  t.equal(
    new Set(byType('quota_usage').map((e) => (e.event_data as { event_id?: string }).event_id)).size,
    3,
    'each charge names its own event',
  );
  // Refusals between two flushes share one row (the timer may flush between these two: then two rows).
  t.equal(
    byType('quota_exceeded').reduce((n, e) => n + (e.event_data.attempts ?? 0), 0),
    2,
    'both refused attempts are recorded',
  );
  const stats = await app.db
    .knex('daily_usage_stats')
    .where({ user_id: id })
    .first('total_posts', 'successful_posts', 'failed_posts');
  t.same(stats, { total_posts: 3, successful_posts: 3, failed_posts: 0 });
  const quotaRejections = await (await fetch(`${app.url}/metrics`)).text();
  t.match(quotaRejections, /nostrx_quota_rejections_total\{plan="basic",period="daily"\} \d+/);
});

t.test('the client disconnects', async () => {
  await new Promise((resolve) => {
    client.ws.once('close', resolve);
    client.close();
  });
});
