// Lock waits as a test sees them in pg_stat_activity: which session waits for a lock another one holds, for tests
// that stage a lock conflict step by step (each step waits for the condition, never for a time).
import type { Knex } from 'knex';
import { waitFor } from './wait-for.js';

/** The server process id of the session running `trx`. */
export async function backendPid(trx: Knex): Promise<number> {
  return ((await trx.raw('SELECT pg_backend_pid() AS pid')) as { rows: { pid: number }[] }).rows[0]!.pid;
}

/** Whether a session of this database whose statement is LIKE `like` waits for a lock that session `pid` holds. */
export async function blockedBy(db: Knex, pid: number, like = '%'): Promise<boolean> {
  const { rows } = (await db.raw(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND ? = ANY (pg_blocking_pids(pid)) AND query LIKE ?`,
    [pid, like],
  )) as { rows: { n: number }[] };
  return rows[0]!.n > 0;
}

/**
 * Waits until `check` holds (up to a minute: lock waits on a loaded machine), or fails naming `what` and what the
 * database's sessions were doing.
 */
export async function untilLocked(db: Knex, what: string, check: () => Promise<boolean>): Promise<void> {
  try {
    await waitFor(what, async () => (await check()) || undefined, 60_000, 20);
  } catch (err) {
    const { rows } = (await db.raw(
      `SELECT pid, state, wait_event_type, pg_blocking_pids(pid) AS blocked_by, left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS query
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    )) as { rows: unknown[] };
    throw new Error(`${(err as Error).message}; sessions: ${JSON.stringify(rows)}`, { cause: err });
  }
}
