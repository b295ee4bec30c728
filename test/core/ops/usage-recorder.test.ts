// The usage recorder (core/ops/usage-recorder.ts) on a real database: events and stats leave in one multi-row
// statement per flush, refusals are aggregated, close flushes what is left, a row in a month without a partition
// is dropped (never a partition created on this path) while the others are written, rows the database refuses are
// dropped without blocking later ones, and rows survive an outage.
import t from 'tap';
import knexFactory from 'knex';
import { createTestDatabase, dbUrl, onBothDatabases } from '../../helpers/db.js';
import { newKey } from '../../helpers/events.js';
import { createLogger } from '../../../src/log.js';
import { createUsageRecorder } from '../../../src/core/ops/usage-recorder.js';
import { upsertUserByPubkey } from '../../../src/store/users.js';
import { eraseUser } from '../../../src/store/user-data.js';
import { partitionNameAt, partitionNames } from '../../../src/store/partitions.js';
import { waitFor } from '../../helpers/wait-for.js';

const db = await createTestDatabase(t);
const log = createLogger('silent');
const statements: string[] = [];
db.knex.on('query', (q: { sql: string }) => statements.push(q.sql));
const inserts = (table: string) =>
  statements.filter(
    (s) =>
      s.toLowerCase().replace(/\s+/g, ' ').startsWith(`insert into ${table} `) ||
      s.startsWith(`insert into "${table}"`),
  ).length;
// Dates relative to now: the current month's partition always exists (the migration creates it), so a fixed
// date would stop working once its month's partition is gone.
const now = new Date();
const today = now.toISOString().slice(0, 10);
const newUser = async () => (await upsertUserByPubkey(db.knex, newKey().pk)).user.id;

t.test('120 events and 3 users’ stats are written with one statement each', async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000, batchRows: 1000 });
  t.teardown(() => rec.close());
  const users = [await newUser(), await newUser(), await newUser()];
  statements.length = 0;
  for (let i = 0; i < 120; i++) {
    const userId = users[i % 3]!;
    rec.event({ userId, type: 'post_success', action: 'post_stored', occurredAt: now, data: { i } });
    rec.post(userId, today, i % 10 === 0 ? 'failure' : 'success', i % 2 ? 'twitter' : 'x.com');
  }
  t.equal(rec.pending(), 123);
  await rec.flush();
  t.equal(rec.pending(), 0);
  t.equal(inserts('usage_events'), 1);
  t.equal(inserts('daily_usage_stats'), 1);
  const n = await db.knex('usage_events').whereIn('user_id', users).count({ n: '*' });
  t.equal(Number((n[0] as { n: string }).n), 120);
  const s = await db
    .knex('daily_usage_stats')
    .where({ user_id: users[0] })
    .first('total_posts', 'successful_posts', 'failed_posts', 'twitter_posts', 'x_com_posts');
  t.same(s, { total_posts: 40, successful_posts: 36, failed_posts: 4, twitter_posts: 20, x_com_posts: 20 });

  rec.post(users[0]!, today, 'success');
  await rec.flush();
  const s2 = await db.knex('daily_usage_stats').where({ user_id: users[0] }).first('total_posts', 'successful_posts');
  t.same(s2, { total_posts: 41, successful_posts: 37 }, 'a later flush adds to the stored row');
});

t.test('every column of a row is written as given, and an absent one as NULL', (t) => {
  onBothDatabases(t, async (t, knex) => {
    const userId = (await upsertUserByPubkey(knex, newKey().pk)).user.id;
    const rec = createUsageRecorder({ db: knex, log, flushMs: 60_000 });
    t.teardown(() => rec.close());
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    const data = {
      event_id: 'ab'.repeat(32),
      kind: 1,
      note: 'a "quoted", {braced} ünïcode \\ value',
      nested: [1, null],
    };
    rec.event({
      userId,
      type: 'quota_usage',
      action: 'post_charged',
      occurredAt: at,
      sourcePlatform: 'x.com',
      postsUsedBefore: 2,
      postsUsedAfter: 3,
      quotaLimit: 25,
      data,
      ip: '2001:db8::1',
      timezone: 'Europe/Paris',
    });
    rec.event({ userId, type: 'tier_change', action: 'plan_changed', occurredAt: at });
    await rec.flush();
    const rows = (await knex('usage_events')
      .where({ user_id: userId })
      .orderBy('event_type')
      .select(
        'event_type',
        'event_action',
        'occurred_at',
        'source_platform',
        'posts_used_before',
        'posts_used_after',
        'quota_limit',
        'event_data',
        knex.raw('host(ip_address) AS ip'),
        'timezone',
      )) as Record<string, unknown>[];
    t.same(
      rows.map((r) => ({ ...r, occurred_at: new Date(r.occurred_at as string | Date).getTime() })),
      [
        {
          event_type: 'quota_usage',
          event_action: 'post_charged',
          occurred_at: at.getTime(),
          source_platform: 'x.com',
          posts_used_before: 2,
          posts_used_after: 3,
          quota_limit: 25,
          event_data: data,
          ip: '2001:db8::1',
          timezone: 'Europe/Paris',
        },
        {
          event_type: 'tier_change',
          event_action: 'plan_changed',
          occurred_at: at.getTime(),
          source_platform: null,
          posts_used_before: null,
          posts_used_after: null,
          quota_limit: null,
          event_data: null,
          ip: null,
          timezone: null,
        },
      ],
    );
  });
  t.end();
});

t.test('usage buffered when the account is erased is not written back', async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000 });
  t.teardown(() => rec.close());
  const [kept, erased] = [await newUser(), await newUser()];
  for (const userId of [kept, erased]) {
    rec.event({ userId, type: 'post_success', action: 'post_stored', occurredAt: now });
    rec.post(userId, today, 'success', 'twitter');
  }
  t.ok(await eraseUser(db.knex, erased));
  await rec.flush();
  for (const table of ['usage_events', 'daily_usage_stats']) {
    t.equal((await db.knex(table).where({ user_id: kept })).length, 1, `${table}: the other user's row is written`);
    t.equal((await db.knex(table).where({ user_id: erased })).length, 0, `${table}: nothing of the erased account`);
  }
});

t.test('refused attempts are aggregated: one row per user and period per flush', async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000 });
  t.teardown(() => rec.close());
  const userId = await newUser();
  for (let i = 0; i < 1000; i++) {
    rec.exceeded({
      userId,
      plan: 'basic',
      period: 'daily',
      periodDate: today,
      limit: 3,
      used: 3,
      resetsAt: new Date(Date.parse(today) + 86_400_000).toISOString(),
      at: new Date(now.getTime() + (i % 60) * 1000),
      via: 'relay',
      ip: '127.0.0.1',
    });
  }
  await rec.flush();
  const rows = (await db
    .knex('usage_events')
    .where({ user_id: userId })
    .select('event_type', 'event_action', 'quota_limit', 'event_data', 'ip_address')) as {
    event_data: { attempts: number; plan: string };
  }[];
  t.equal(rows.length, 1);
  t.match(rows[0], {
    event_type: 'quota_exceeded',
    event_action: 'daily_limit',
    quota_limit: 3,
    ip_address: '127.0.0.1',
    event_data: { attempts: 1000, plan: 'basic' },
  });
});

t.test('the batch size triggers a flush before the interval; close flushes the rest', async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000, batchRows: 10 });
  const userId = await newUser();
  for (let i = 0; i < 10; i++)
    rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: new Date() });
  await waitFor('the batch to be written', () => rec.pending() === 0);
  t.equal(rec.pending(), 0, 'flushed without waiting for the timer');
  rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: new Date() });
  await rec.close();
  const n = await db.knex('usage_events').where({ user_id: userId }).count({ n: '*' });
  t.equal(Number((n[0] as { n: string }).n), 11);
  rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: new Date() });
  t.equal(rec.pending(), 0, 'nothing is taken after close');
});

t.test("the batch size writes the events early; the day's totals wait for the interval (or flush)", async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000, batchRows: 10 });
  t.teardown(() => rec.close());
  const userId = await newUser();
  statements.length = 0;
  for (let i = 0; i < 10; i++) {
    rec.post(userId, today, 'success');
    rec.event({ userId, type: 'post_success', action: 'post_stored', occurredAt: new Date() });
  }
  await waitFor('the events to be written', () => rec.pending() <= 1);
  t.equal(rec.pending(), 1, 'the events went; the one totals row waits');
  t.equal(inserts('daily_usage_stats'), 0, 'no totals written early');
  t.equal(await db.knex('daily_usage_stats').where({ user_id: userId }).first('total_posts'), undefined);
  await rec.flush();
  t.match(
    await db.knex('daily_usage_stats').where({ user_id: userId }).first('total_posts'),
    { total_posts: 10 },
    'written by the flush, all ten',
  );
  t.equal(inserts('daily_usage_stats'), 1);
});

t.test(
  'a row in a month without a partition is dropped, the others are written, and no partition is created here',
  async (t) => {
    const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000 });
    t.teardown(() => rec.close());
    const userId = await newUser();
    // Two years ahead: maintenance creates a few months ahead, never that far.
    const farAhead = new Date(Date.UTC(now.getUTCFullYear() + 2, now.getUTCMonth(), 15, 12));
    statements.length = 0;
    rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: farAhead });
    rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: now });
    await rec.flush();
    t.equal(rec.pending(), 0, 'the row without a partition is not kept for later flushes');
    const { rows } = (await db.knex.raw(
      `SELECT tableoid::regclass::text AS part, occurred_at FROM usage_events WHERE user_id = ?`,
      [userId],
    )) as {
      rows: { part: string; occurred_at: Date }[];
    };
    t.same(
      rows,
      [{ part: partitionNameAt('usage_events', now), occurred_at: now }],
      'the row of this month is written',
    );
    t.same(
      statements.filter((s) => /^\s*(create|alter|drop)\b/i.test(s)),
      [],
      'no DDL on the usage path',
    );
    t.notOk(
      (await partitionNames(db.knex, 'usage_events')).has(partitionNameAt('usage_events', farAhead)),
      'no partition was created',
    );
  },
);

t.test('rows the database refuses are dropped; later rows are written', async (t) => {
  const rec = createUsageRecorder({ db: db.knex, log, flushMs: 60_000 });
  t.teardown(() => rec.close());
  const userId = await newUser();
  // a platform longer than its column (VARCHAR(50)): a data exception (22001)
  rec.event({
    userId,
    type: 'quota_usage',
    action: 'post_charged',
    occurredAt: new Date(),
    sourcePlatform: 'x'.repeat(51),
  });
  await rec.flush();
  t.equal(rec.pending(), 0, 'the refused batch is not retried forever');
  rec.event({ userId, type: 'quota_usage', action: 'post_charged', occurredAt: new Date() });
  await rec.flush();
  t.equal((await db.knex('usage_events').where({ user_id: userId })).length, 1);
});

t.test('while the database cannot be reached, rows are kept for the next flush', async (t) => {
  const quiet = { warn: () => undefined, error: () => undefined, debug: () => undefined, deprecate: () => undefined };
  const unreachable = knexFactory({
    client: 'pg',
    connection: dbUrl('nostrx_no_such_database'),
    pool: { min: 0, max: 1 },
    log: quiet,
  });
  t.teardown(() => unreachable.destroy());
  const rec = createUsageRecorder({ db: unreachable, log, flushMs: 60_000 });
  rec.event({
    userId: '00000000-0000-0000-0000-000000000000',
    type: 'quota_usage',
    action: 'post_charged',
    occurredAt: new Date(),
  });
  rec.post('00000000-0000-0000-0000-000000000000', today, 'success');
  await rec.flush();
  t.equal(rec.pending(), 2);
});
