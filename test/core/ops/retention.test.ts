// Retention of the partitioned tables (core/ops/maintenance.ts applyRetention) on the PostgreSQL server: a month goes
// once its last day is older than the table's days, each table by its own setting, 0 keeps everything, and the
// service runs it at start.
import t from 'tap';
import { createTestDatabase } from '../../helpers/db.js';
import { monthPartition, partitionsOf } from '../../helpers/partitions.js';
import { ensureMonthlyPartitions, type PartitionedTable } from '../../../src/store/partitions.js';
import { pino } from 'pino';
import { applyRetention, startMaintenance } from '../../../src/core/ops/maintenance.js';
import { waitFor } from '../../helpers/wait-for.js';

const db = await createTestDatabase(t);
const knex = db.knex;

const partitions = (table: PartitionedTable) => partitionsOf(knex, table);

const now = new Date();
const seconds = Math.floor(now.getTime() / 1000);
// The five months before this one exist (as on a service that has run for a while).
await ensureMonthlyPartitions(knex, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 5, 15)), 6);

t.test('each table keeps its own number of days, in whole months; 0 keeps everything', async (t) => {
  const before = { usage: await partitions('usage_events'), publishes: await partitions('relay_publishes') };
  for (let m = -5; m <= 0; m++)
    t.ok(
      before.usage.includes(monthPartition('usage_events', now, m)),
      `${monthPartition('usage_events', now, m)} exists`,
    );

  t.same(await applyRetention(knex, { usage_events: 0, relay_publishes: 0 }, seconds), {}, '0 keeps everything');
  t.same(await partitions('usage_events'), before.usage);

  // 62 days: a month goes once it ended 62 days ago, so two or three months stay before this one.
  const dropped = await applyRetention(knex, { usage_events: 62, relay_publishes: 0 }, seconds);
  const cutoff = new Date((seconds - 62 * 86_400) * 1000);
  const gone = (dropped.usage_events ?? []).sort();
  t.ok(
    gone.includes(monthPartition('usage_events', now, -5)) && gone.includes(monthPartition('usage_events', now, -4)),
    `the oldest months dropped: ${gone.join(', ')}`,
  );
  for (const name of gone) {
    const [, y, m] = /_y(\d{4})m(\d{2})$/.exec(name)!;
    t.ok(new Date(Date.UTC(Number(y), Number(m), 1)) <= cutoff, `${name} ended before the cutoff`);
  }
  const left = await partitions('usage_events');
  t.ok(
    left.includes(monthPartition('usage_events', now, -1)) && left.includes(monthPartition('usage_events', now, 0)),
    'last month and this one stay',
  );
  t.same(await partitions('relay_publishes'), before.publishes, 'relay_publishes has its own setting (0 here)');
  t.same(
    await applyRetention(knex, { usage_events: 62, relay_publishes: 0 }, seconds),
    {},
    'a second run drops nothing',
  );
});

t.test('the service applies retention when maintenance starts', async (t) => {
  const before = await partitions('relay_publishes');
  t.ok(before.includes(monthPartition('relay_publishes', now, -5)));
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const m = startMaintenance({ db: knex, log, retention: { usage_events: 0, relay_publishes: 31 } });
  t.teardown(() => m.stop());
  await waitFor(
    'the old month to be dropped',
    async () => !(await partitions('relay_publishes')).includes(monthPartition('relay_publishes', now, -5)),
  );
  const after = await partitions('relay_publishes');
  t.notOk(after.includes(monthPartition('relay_publishes', now, -5)), 'old relay_publishes months dropped at start');
  t.ok(after.includes(monthPartition('relay_publishes', now, 0)), 'this month stays');
  // the line is written once the drop's statement has returned: wait for it as for the drop (a loaded machine is slow)
  const logged = () => lines.some((l) => l.includes('old partitions dropped by retention'));
  await waitFor('the retention line in the log', logged);
  t.ok(logged(), 'and it says so in the log');
});
