// Periodic upkeep run by every process (each job is idempotent, so several processes may run it): monthly
// partitions created ahead, old months of the partitioned tables dropped by retention, NIP-40 expired events
// taken out of the served set, events removed from it long enough ago erased, each user's own retention period
// applied (core/ops/user-retention.ts), and old payments archived.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import { eraseRemoved, removeExpired } from '../../store/events.js';
import { archivePaymentsOlderThan } from '../../store/payments.js';
import { dropPartitionsBefore, ensureMonthlyPartitions, type PartitionedTable } from '../../store/partitions.js';
import { applyUserRetention } from './user-retention.js';

/** Days kept per partitioned table; 0 keeps everything. */
export type Retention = Readonly<Record<PartitionedTable, number>>;

export interface MaintenanceDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly retention: Retention;
  /** Days a removed event (deleted, replaced, expired) is kept before it is erased; 0 keeps it. */
  readonly removedEventsDays?: number;
  /** Years after which a payment is archived; 0 never. */
  readonly paymentsArchiveYears?: number;
  readonly now?: () => number;
  readonly eraseMs?: number;
  readonly archiveMs?: number;
  readonly userRetentionMs?: number;
  readonly expiredSweepMs?: number;
  readonly partitionsMs?: number;
}

/**
 * Drops the month partitions whose last day is older than the table's retention (a whole month at a time, so rows
 * are kept between `days` and `days` plus a month). Returns the partitions dropped, per table.
 */
export async function applyRetention(
  db: Knex,
  retention: Retention,
  nowSeconds: number,
): Promise<Partial<Record<PartitionedTable, string[]>>> {
  const dropped: Partial<Record<PartitionedTable, string[]>> = {};
  for (const [table, days] of Object.entries(retention) as [PartitionedTable, number][]) {
    if (days <= 0) continue;
    const names = await dropPartitionsBefore(db, table, new Date((nowSeconds - days * 86_400) * 1000));
    if (names.length > 0) dropped[table] = names;
  }
  return dropped;
}

/** Batches of one erasing run: with the hourly runs, up to 2.4 million rows a day, each batch a short statement. */
const ERASE_BATCH = 1000;
const ERASE_MAX_BATCHES = 100;

/** Erases the events removed more than `days` ago, a batch at a time; returns how many. */
export async function eraseRemovedEvents(db: Knex, days: number, nowSeconds: number): Promise<number> {
  if (days <= 0) return 0;
  const before = new Date((nowSeconds - days * 86_400) * 1000);
  let erased = 0;
  for (let i = 0; i < ERASE_MAX_BATCHES; i++) {
    const n = await eraseRemoved(db, before, ERASE_BATCH);
    erased += n;
    if (n < ERASE_BATCH) break;
  }
  return erased;
}

export function startMaintenance(deps: MaintenanceDeps): { stop(): void } {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const run = (name: string, job: () => Promise<unknown>) => () => {
    job().catch((err: unknown) => deps.log.error({ err, job: name }, 'maintenance job failed'));
  };
  const retention = async (): Promise<void> => {
    const dropped = await applyRetention(deps.db, deps.retention, now());
    if (Object.keys(dropped).length > 0)
      deps.log.info({ dropped, retention: deps.retention }, 'old partitions dropped by retention');
  };
  // The months ahead are created and the months past their retention dropped by one job.
  const partitions = run('partitions', async () => {
    await ensureMonthlyPartitions(deps.db, new Date(now() * 1000));
    await retention();
  });
  const erase = run('erase', async () => {
    const erased = await eraseRemovedEvents(deps.db, deps.removedEventsDays ?? 0, now());
    if (erased > 0) deps.log.info({ erased, removedEventsDays: deps.removedEventsDays }, 'removed events erased');
  });
  const archive = run('archive', async () => {
    const years = deps.paymentsArchiveYears ?? 0;
    const archived = years > 0 ? await archivePaymentsOlderThan(deps.db, years) : 0;
    if (archived > 0) deps.log.info({ archived, paymentsArchiveYears: years }, 'old payments archived');
  });
  const userRetention = run('user-retention', async () => {
    const erased = await applyUserRetention(deps.db, now());
    if (erased.events + erased.usageEvents + erased.sessions > 0)
      deps.log.info({ erased }, "rows erased by their users' retention periods");
  });
  const timers = [
    setInterval(
      run('expire', () => removeExpired(deps.db, now())),
      deps.expiredSweepMs ?? 60_000,
    ),
    setInterval(partitions, deps.partitionsMs ?? 6 * 3600_000),
    setInterval(erase, deps.eraseMs ?? 3600_000),
    setInterval(archive, deps.archiveMs ?? 3600_000),
    setInterval(userRetention, deps.userRetentionMs ?? 3600_000),
  ];
  for (const t of timers) t.unref();
  // At start, only the old months go (a service restarted once a month must not wait six hours to drop one): the
  // caller has just created the months ahead, before serving (app.ts).
  run('partitions', retention)();
  erase();
  archive();
  userRetention();
  return {
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
