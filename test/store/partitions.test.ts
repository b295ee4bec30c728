// Monthly partition maintenance on the PostgreSQL server: creation ahead of time (idempotent, race-safe, UTC
// month bounds) and retention (whole past months only, never the current one).
import t from 'tap';
import type { Knex } from 'knex';
import { createTestDatabase } from '../helpers/db.js';
import { backendPid, blockedBy, untilLocked } from '../helpers/locks.js';
import { monthPartition, partitionsOf } from '../helpers/partitions.js';
import { dropPartitionsBefore, ensureMonthlyPartitions, type PartitionedTable } from '../../src/store/partitions.js';

const db = await createTestDatabase(t);
const knex = db.knex;

const partitions = (table: PartitionedTable) => partitionsOf(knex, table);

async function insertUsage(trx: Knex, userId: string, occurredAt: string): Promise<string> {
  const { rows } = (await trx.raw(
    `INSERT INTO usage_events (user_id, event_type, event_action, occurred_at) VALUES (?, 'quota_usage', 'post_created', ?)
     RETURNING tableoid::regclass::text AS part`,
    [userId, occurredAt],
  )) as { rows: { part: string }[] };
  return rows[0]!.part;
}

const [user] = (await knex('users')
  .insert({ nostr_public_key: 'ab'.repeat(32) })
  .returning('id')) as { id: string }[];
const userId = user!.id;
const now = new Date();

t.test('ensureMonthlyPartitions creates the months ahead once', async (t) => {
  const ahead = (table: PartitionedTable) => [monthPartition(table, now, 2), monthPartition(table, now, 3)];
  t.same(
    await ensureMonthlyPartitions(knex, now, 3),
    [...ahead('usage_events'), ...ahead('relay_publishes')],
    'the two missing months of each table',
  );
  t.same(await ensureMonthlyPartitions(knex, now, 3), [], 'a second call creates nothing');
  t.same(await ensureMonthlyPartitions(knex, now), [], 'nor does the default (this month and the two after)');
  for (const table of ['usage_events', 'relay_publishes'] as const) {
    const names = await partitions(table);
    for (let i = 0; i <= 3; i++)
      t.ok(names.includes(monthPartition(table, now, i)), `${monthPartition(table, now, i)} exists`);
  }
  await t.rejects(ensureMonthlyPartitions(knex, now, -1), RangeError, 'monthsAhead must not be negative');
});

t.test('months are UTC months, whatever the session time zone', async (t) => {
  t.same(await ensureMonthlyPartitions(knex, new Date('2020-01-31T23:59:59Z'), 1), [
    'usage_events_y2020m01',
    'usage_events_y2020m02',
    'relay_publishes_y2020m01',
    'relay_publishes_y2020m02',
  ]);
  await knex.transaction(async (trx) => {
    await trx.raw(`SET LOCAL TIME ZONE 'Pacific/Auckland'`); // UTC+13 in January
    t.equal(
      await insertUsage(trx, userId, '2020-01-31T23:30:00Z'),
      'usage_events_y2020m01',
      'the last half hour of January (UTC)',
    );
    t.equal(
      await insertUsage(trx, userId, '2020-02-01T00:00:00Z'),
      'usage_events_y2020m02',
      'the first instant of February (UTC)',
    );
  });
  await t.rejects(
    insertUsage(knex, userId, '2019-12-31T12:00:00Z'),
    { code: '23514' },
    'a month without a partition refuses rows',
  );
});

t.test('concurrent callers create each partition exactly once', async (t) => {
  const base = new Date('2019-03-10T00:00:00Z');
  const expected = ['usage_events', 'relay_publishes'].flatMap((table) =>
    [0, 1, 2].map((i) => monthPartition(table as PartitionedTable, base, i)),
  );
  // Force the race: hold both parents locked so every caller passes its "does it exist?" look-up and then waits
  // in CREATE TABLE; when the lock goes, one caller wins each partition and the others lose the race.
  const blocker = await knex.transaction();
  await blocker.raw('LOCK TABLE usage_events, relay_publishes IN ACCESS EXCLUSIVE MODE');
  const callers = [1, 2, 3].map(() => ensureMonthlyPartitions(knex, base, 2));
  // Polled outside the blocker's transaction: a transaction sees one snapshot of pg_stat_activity.
  for (let waited = 0; ; waited += 20) {
    const { rows } = (await knex.raw(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'CREATE TABLE%'`,
    )) as { rows: { n: number }[] };
    if (rows[0]!.n === 3) break;
    if (waited > 10_000) throw new Error('the callers never reached CREATE TABLE');
    await new Promise((r) => setTimeout(r, 20));
  }
  await blocker.commit();
  const results = await Promise.all(callers);
  const created = results.flat().sort();
  t.same(created, [...expected].sort(), 'every partition is reported by exactly one caller');
  const names = await partitions('usage_events');
  for (const name of expected.filter((n) => n.startsWith('usage_events'))) t.ok(names.includes(name), `${name} exists`);
});

t.test('dropPartitionsBefore drops whole past months only', async (t) => {
  const current = monthPartition('usage_events', now, 0);
  t.equal(await insertUsage(knex, userId, now.toISOString()), current);

  t.same(
    await dropPartitionsBefore(knex, 'usage_events', new Date('2020-02-01T00:00:00Z')),
    ['usage_events_y2019m03', 'usage_events_y2019m04', 'usage_events_y2019m05', 'usage_events_y2020m01'],
    'months that end on or before the cutoff, oldest first',
  );
  let names = await partitions('usage_events');
  t.ok(names.includes('usage_events_y2020m02'), 'the month that ends after the cutoff stays');
  t.ok((await partitions('relay_publishes')).includes('relay_publishes_y2019m03'), 'the other table is untouched');
  const rows = (await knex('usage_events')
    .where({ user_id: userId })
    .orderBy('occurred_at')
    .pluck('occurred_at')) as Date[];
  t.same(
    rows.map((d) => d.toISOString()),
    ['2020-02-01T00:00:00.000Z', now.toISOString()],
    'January’s row went with its partition',
  );

  t.same(
    await dropPartitionsBefore(knex, 'usage_events', new Date('2100-01-01T00:00:00Z')),
    ['usage_events_y2020m02'],
    'a cutoff in the future still spares the current month and the months ahead',
  );
  names = await partitions('usage_events');
  for (let i = 0; i <= 3; i++)
    t.ok(names.includes(monthPartition('usage_events', now, i)), `${monthPartition('usage_events', now, i)} stays`);
  t.equal(
    await knex('usage_events')
      .where({ user_id: userId })
      .count({ n: '*' })
      .first()
      .then((r) => Number(r?.n)),
    1,
    'this month’s row is still there',
  );

  t.same(await dropPartitionsBefore(knex, 'relay_publishes', new Date('2100-01-01T00:00:00Z')), [
    'relay_publishes_y2019m03',
    'relay_publishes_y2019m04',
    'relay_publishes_y2019m05',
    'relay_publishes_y2020m01',
    'relay_publishes_y2020m02',
  ]);
  t.same(
    await dropPartitionsBefore(knex, 'relay_publishes', new Date('2100-01-01T00:00:00Z')),
    [],
    'nothing is left to drop',
  );

  await t.rejects(dropPartitionsBefore(knex, 'users' as PartitionedTable, now), /not a partitioned table/);
  await t.rejects(dropPartitionsBefore(knex, 'usage_events', new Date('nonsense')), RangeError);
});

let eventSeq = 0;
async function insertEvent(trx: Knex): Promise<string> {
  const { rows } = (await trx.raw(
    `INSERT INTO nostr_events (event_id, user_id, pubkey, event_kind, created_at_nostr, content, tags, sig)
     VALUES (?, ?, ?, 1, 1, 'x', '[]', decode(?, 'hex')) RETURNING id`,
    [(++eventSeq).toString(16).padStart(64, 'e'), userId, 'ab'.repeat(32), 'cd'.repeat(64)],
  )) as { rows: { id: string }[] };
  return rows[0]!.id;
}

// Issue 18: CREATE TABLE … PARTITION OF relay_publishes took ACCESS EXCLUSIVE on relay_publishes, then waited for
// SHARE ROW EXCLUSIVE on nostr_events (its foreign key), while the group commit, holding ROW EXCLUSIVE on
// nostr_events, waited for ROW EXCLUSIVE on relay_publishes: 40P01. A writer here takes the group commit's order
// (events, then outbox) and the forwarder's (outbox, then events), with the partition DDL started in between.
t.test('partitions are created while a writer holds the tables, in either order, with no deadlock', async (t) => {
  const outboxRow = await insertEvent(knex);
  await knex('relay_publishes').insert({ event_id: outboxRow, relay_url: 'wss://relay.example' });
  const orders = {
    'events, then outbox (the group commit)': [
      async (w: Knex.Transaction) => {
        await insertEvent(w);
      },
      async (w: Knex.Transaction) => {
        await w('relay_publishes').insert({ event_id: await insertEvent(w), relay_url: 'wss://relay.example' });
      },
    ],
    'outbox, then events (an outcome recorded)': [
      async (w: Knex.Transaction) => {
        await w('relay_publishes').where({ event_id: outboxRow }).increment('attempts', 1);
      },
      async (w: Knex.Transaction) => {
        await w('nostr_events').where({ id: outboxRow }).update({ updated_at: knex.fn.now() });
      },
    ],
  } as const;
  let ahead = 30; // months of their own, far from the ones the other tests count
  for (const [order, [first, second]] of Object.entries(orders)) {
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + ++ahead, 1));
    const writer = await knex.transaction();
    await first(writer);
    const writerPid = await backendPid(writer);
    let ddlDone = false;
    const ddl = ensureMonthlyPartitions(knex, month, 0).finally(() => (ddlDone = true));
    // the DDL either waits for the writer or, holding nothing it needs, is already done
    await untilLocked(
      knex,
      'the DDL waits for the writer or is done',
      async () => ddlDone || (await blockedBy(knex, writerPid)),
    );
    await t.resolves(second(writer), `${order}: the writer goes on while the DDL waits`);
    await writer.commit();
    t.same(
      (await ddl).sort(),
      [monthPartition('relay_publishes', month, 0), monthPartition('usage_events', month, 0)],
      `${order}: the DDL completes`,
    );
  }
});

t.test('partition DDL gives up after its tries when its locks stay taken, and leaves nothing half-made', async (t) => {
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 40, 1));
  const name = monthPartition('relay_publishes', month, 0);
  const holder = await knex.transaction();
  // an ANALYZE of the outbox (as autovacuum runs) holds SHARE UPDATE EXCLUSIVE on it, which an attach must wait out
  await holder.raw('ANALYZE relay_publishes');
  await t.rejects(
    ensureMonthlyPartitions(knex, month, 0, { lockTimeoutMs: 50, attempts: 2 }),
    { code: '55P03' },
    'lock_timeout, twice',
  );
  const { rows } = (await knex.raw('SELECT to_regclass(?) AS t', [name])) as { rows: { t: string | null }[] };
  t.equal(rows[0]!.t, null, 'no table of that name was left behind, attached or not');
  await holder.commit();
  t.same(
    await ensureMonthlyPartitions(knex, month, 0),
    [name],
    'made once the locks are free (the usage_events month was made before)',
  );
});
