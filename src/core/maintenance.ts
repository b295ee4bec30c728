// Periodic upkeep run by every process (each job is idempotent, so several processes may run it): monthly
// partitions created ahead, and NIP-40 expired events taken out of the served set.
import type { Knex } from 'knex';
import type { Logger } from '../log.js';
import { removeExpired } from '../store/events.js';
import { ensureMonthlyPartitions } from '../store/partitions.js';

export interface MaintenanceDeps {
  readonly db: Knex;
  readonly log: Logger;
  readonly now?: () => number;
  readonly expiredSweepMs?: number;
  readonly partitionsMs?: number;
}

export function startMaintenance(deps: MaintenanceDeps): { stop(): void } {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const run = (name: string, job: () => Promise<unknown>) => () => {
    job().catch((err: unknown) => deps.log.error({ err, job: name }, 'maintenance job failed'));
  };
  const timers = [
    setInterval(run('expire', () => removeExpired(deps.db, now())), deps.expiredSweepMs ?? 60_000),
    setInterval(run('partitions', () => ensureMonthlyPartitions(deps.db, new Date(now() * 1000))), deps.partitionsMs ?? 6 * 3600_000),
  ];
  for (const t of timers) t.unref();
  return {
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
