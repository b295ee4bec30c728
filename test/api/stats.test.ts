// GET /v1/stats: the caller's own daily stats, on plans with analytics only.
import t from 'tap';
import { changePlan } from '../../src/core/accounts/account-admin.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey, type Key } from '../helpers/events.js';

const app = await startTestApp(t);
const api = new ApiClient(app.url);
const db = app.db.knex;
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

async function userId(key: Key): Promise<string> {
  await api.signed(key, 'GET', '/v1/me');
  return (await db('users').where({ nostr_public_key: key.pk }).first('id')).id as string;
}

async function statsRow(id: string, date: string, total: number) {
  await db('daily_usage_stats').insert({
    user_id: id,
    stat_date: date,
    total_posts: total,
    successful_posts: total - 1,
    failed_posts: 1,
    total_relay_attempts: total * 2,
    successful_relay_publishes: total,
    avg_publish_time_ms: 120,
    twitter_posts: total,
  });
}

t.test('on the basic plan stats are a 403 naming the plan that has them', async (t) => {
  const r = await api.signed(newKey(), 'GET', '/v1/stats');
  t.equal(r.status, 403);
  t.equal(r.body.error.code, 'plan_required');
  t.equal(r.body.error.plan, 'premium');
  t.equal(r.body.error.message, 'your plan basic does not include stats; the premium plan (Premium) does');
});

t.test('a premium user gets their days in the range, oldest first, with totals', async (t) => {
  const alice = newKey();
  const id = await userId(alice);
  await changePlan(app.accountAdmin, id, 'premium', 'test');
  await statsRow(id, day(-40), 9);
  await statsRow(id, day(-2), 5);
  await statsRow(id, day(0), 3);
  const r = await api.signed(alice, 'GET', '/v1/stats');
  t.equal(r.status, 200);
  t.equal(r.body.to, day(0));
  t.equal(r.body.from, day(-29), 'the last 30 days by default');
  t.same(
    r.body.days.map((d: { date: string; total_posts: number }) => [d.date, d.total_posts]),
    [
      [day(-2), 5],
      [day(0), 3],
    ],
  );
  t.match(r.body.days[0], {
    successful_posts: 4,
    failed_posts: 1,
    total_relay_attempts: 10,
    avg_publish_time_ms: 120,
    twitter_posts: 5,
  });
  t.match(r.body.totals, { total_posts: 8, successful_posts: 6, failed_posts: 2 });
  const wide = await api.signed(alice, 'GET', `/v1/stats?from=${day(-60)}&to=${day(-30)}`);
  t.same(
    wide.body.days.map((d: { total_posts: number }) => d.total_posts),
    [9],
  );
});

t.test("without `to` the range ends on the caller's today, in their time zone (stat_date is their date)", async (t) => {
  const localToday = (timeZone: string) => new Intl.DateTimeFormat('en-CA', { timeZone }).format(new Date());
  // UTC+14 is a day ahead of UTC from 10:00 UTC on, UTC-11 a day behind until 11:00: one of them differs at any hour
  for (const timezone of ['Pacific/Kiritimati', 'Pacific/Pago_Pago', 'UTC']) {
    const key = newKey();
    await changePlan(app.accountAdmin, await userId(key), 'premium', 'test');
    const set = await api.signed(key, 'PATCH', '/v1/me', { body: { timezone } });
    t.equal(set.status, 200, 'the time zone is set');
    const before = localToday(timezone);
    const r = await api.signed(key, 'GET', '/v1/stats');
    const after = localToday(timezone); // the date may turn between the two readings
    t.equal(r.status, 200);
    t.ok([before, after].includes(r.body.to), `${timezone}: to ${r.body.to}, local today ${before}`);
    const explicit = await api.signed(key, 'GET', `/v1/stats?to=${day(-5)}`);
    t.equal(explicit.body.to, day(-5), 'a given `to` is kept');
  }
});

t.test("stats are the caller's own", async (t) => {
  const alice = newKey();
  const bob = newKey();
  const aliceId = await userId(alice);
  const bobId = await userId(bob);
  await changePlan(app.accountAdmin, aliceId, 'advanced', 'test');
  await changePlan(app.accountAdmin, bobId, 'advanced', 'test');
  await statsRow(aliceId, day(0), 7);
  const r = await api.signed(bob, 'GET', '/v1/stats');
  t.same(r.body.days, []);
});

t.test('the range is checked: dates, order, and at most 366 days', async (t) => {
  const alice = newKey();
  await changePlan(app.accountAdmin, await userId(alice), 'premium', 'test');
  let r = await api.signed(alice, 'GET', '/v1/stats?from=yesterday');
  t.same([r.status, r.body.error.field], [400, 'from']);
  r = await api.signed(alice, 'GET', `/v1/stats?from=${day(0)}&to=${day(-1)}`);
  t.same([r.status, r.body.error.field], [400, 'from']);
  t.match(r.body.error.message, /is after to/);
  r = await api.signed(alice, 'GET', `/v1/stats?from=${day(-400)}&to=${day(0)}`);
  t.equal(r.status, 400);
  t.match(r.body.error.message, /the range is 401 days, the limit is 366/);
});
