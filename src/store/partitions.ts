// Monthly partitions of the two partitioned tables (usage_events by occurred_at, relay_publishes by created_at).
// Partitions are named <table>_yYYYYmMM and cover one calendar month in UTC, whatever the session's TimeZone.
// The service calls ensureMonthlyPartitions at start and from maintenance (core/maintenance.ts), for the months
// ahead; migration 0004 calls it once so a freshly migrated database accepts rows at once. Nothing on a write path
// creates partitions: a row for a month without one is refused. Retention drops whole months with
// dropPartitionsBefore.
//
// Partition DDL runs while events are written, so it must never deadlock with a writer. `CREATE TABLE … PARTITION
// OF` does: it takes ACCESS EXCLUSIVE on the parent, then SHARE ROW EXCLUSIVE on every table the parent's foreign
// keys reference (nostr_events, user_relays, users), while the group commit holds ROW EXCLUSIVE on nostr_events and
// waits for ROW EXCLUSIVE on relay_publishes (40P01, issue 18). So a partition is made as a plain table (`LIKE` the
// parent: ACCESS SHARE on it) and attached (`ATTACH PARTITION`: SHARE UPDATE EXCLUSIVE on the parent), in one
// transaction. Neither lock conflicts with the ROW EXCLUSIVE / ROW SHARE / ACCESS SHARE locks that reads and writes
// take, so while the attach waits for the referenced tables it holds nothing a writer waits for: it can wait, never
// deadlock. Its wait is bounded by lock_timeout (writers that arrive meanwhile queue behind the waiting request),
// and a timed-out try is made again a little later. Since migrations 0034 and 0037 neither parent has a foreign key,
// so an attach waits only for what holds its parent in SHARE UPDATE EXCLUSIVE or more (an ANALYZE, a VACUUM).
import type { Knex } from 'knex';
import { retrying } from '../lib/retry.js';
import { isLockTimeout } from './retryable-errors.js';

const partitionedTables = ['usage_events', 'relay_publishes'] as const;
export type PartitionedTable = (typeof partitionedTables)[number];

// Errors a concurrent creator of the same partition can cause us: the name is taken (42P07 duplicate_table,
// 42710 duplicate_object, or 23505 on the catalog's unique index when both inserted at once) or the range
// now overlaps the other's partition (42P17 invalid_object_definition).
const raceCodes = new Set(['42P07', '42710', '23505', '42P17']);

/** How partition DDL waits for its locks. */
export interface PartitionDdlOptions {
  /** Longest wait for one lock before the try is given up (default 2000 ms): writers queue behind a waiting DDL lock. */
  readonly lockTimeoutMs?: number;
  /** Tries of one partition's DDL when its lock waits time out (default 3), a short jittered wait apart. */
  readonly attempts?: number;
}

interface MonthRange {
  readonly name: string;
  readonly from: string;
  readonly to: string;
}

function monthRange(table: PartitionedTable, year: number, month: number): MonthRange {
  const from = new Date(Date.UTC(year, month, 1));
  const to = new Date(Date.UTC(year, month + 1, 1));
  const mm = String(from.getUTCMonth() + 1).padStart(2, '0');
  return { name: `${table}_y${from.getUTCFullYear()}m${mm}`, from: from.toISOString(), to: to.toISOString() };
}

/** The name of the partition of `table` that holds the instant `at` (its UTC month). */
export function partitionNameAt(table: PartitionedTable, at: Date): string {
  return monthRange(table, at.getUTCFullYear(), at.getUTCMonth()).name;
}

/** The names of the partitions attached to `table`. */
export async function partitionNames(knex: Knex, table: PartitionedTable): Promise<Set<string>> {
  const { rows } = (await knex.raw(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ?::regclass`,
    [table],
  )) as { rows: { name: string }[] };
  return new Set(rows.map((r) => r.name));
}

/**
 * Runs `ddl` in a transaction of its own whose lock waits are bounded by lock_timeout, and tries it again when a
 * wait timed out. Inside a caller's transaction (a migration) it is a savepoint: a failure (a lost race) rolls back
 * this DDL only and leaves the caller's transaction usable, and the caller's lock policy stands (SET LOCAL would
 * outlive the savepoint).
 */
async function boundedDdl(
  knex: Knex,
  opts: PartitionDdlOptions,
  ddl: (trx: Knex.Transaction) => Promise<void>,
): Promise<void> {
  const lockTimeoutMs = opts.lockTimeoutMs ?? 2000;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1)
    throw new RangeError(`lockTimeoutMs must be an integer >= 1, got ${lockTimeoutMs}`);
  await retrying(
    () =>
      knex.transaction(async (trx) => {
        if (!knex.isTransaction) await trx.raw(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
        await ddl(trx);
      }),
    { attempts: opts.attempts ?? 3, baseDelayMs: 200, retryable: isLockTimeout },
  );
}

/**
 * Creates the monthly partitions of usage_events and relay_publishes for the month of `now` through
 * `monthsAhead` months later (UTC). Idempotent, safe when several processes run it at once, and safe while rows are
 * written (see the top of this file). Returns the partitions this call created (empty when they all existed).
 */
export async function ensureMonthlyPartitions(
  knex: Knex,
  now: Date,
  monthsAhead = 2,
  opts: PartitionDdlOptions = {},
): Promise<string[]> {
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0)
    throw new RangeError(`monthsAhead must be an integer >= 0, got ${monthsAhead}`);
  const created: string[] = [];
  for (const table of partitionedTables) {
    const existing = await partitionNames(knex, table);
    for (let i = 0; i <= monthsAhead; i++) {
      const range = monthRange(table, now.getUTCFullYear(), now.getUTCMonth() + i);
      if (existing.has(range.name)) continue;
      // DDL takes no bind parameters; name and bounds are generated above from a fixed table list and a Date.
      // Plain CREATE, not CREATE TABLE IF NOT EXISTS: IF NOT EXISTS would also "succeed" on an unrelated table of
      // that name, and could not tell us whether this call or a concurrent one created the partition. Existing
      // partitions are skipped above; one created concurrently since then surfaces as an error handled below.
      // LIKE copies the columns with their defaults, NOT NULLs and CHECKs, as ATTACH requires; ATTACH adds the
      // parent's indexes, primary key and foreign keys, so the partition is the one PARTITION OF would make.
      try {
        await boundedDdl(knex, opts, async (trx) => {
          await trx.raw(
            `CREATE TABLE "${range.name}" (LIKE "${table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE ` +
              `INCLUDING COMPRESSION INCLUDING GENERATED INCLUDING IDENTITY)`,
          );
          await trx.raw(
            `ALTER TABLE "${table}" ATTACH PARTITION "${range.name}" FOR VALUES FROM ('${range.from}') TO ('${range.to}')`,
          );
        });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // Lost the race: another process created the same partition between our look-up and our CREATE.
        if (typeof code === 'string' && raceCodes.has(code) && (await partitionNames(knex, table)).has(range.name))
          continue;
        throw err;
      }
      created.push(range.name);
    }
  }
  return created;
}

/**
 * Drops the monthly partitions of `table` whose range ends on or before `cutoff`, found through pg_inherits and
 * the partition bounds (not the names). Never drops a partition whose range has not ended yet, so the current
 * month survives whatever the cutoff. Returns the names of the partitions dropped.
 */
export async function dropPartitionsBefore(
  knex: Knex,
  table: PartitionedTable,
  cutoff: Date,
  opts: PartitionDdlOptions = {},
): Promise<string[]> {
  if (!(partitionedTables as readonly string[]).includes(table))
    throw new Error(`${String(table)} is not a partitioned table`);
  if (Number.isNaN(cutoff.getTime())) throw new RangeError('cutoff is not a valid date');
  // The bound is read back from its text form; ISO DateStyle makes that text parse back to the same instant
  // whatever the caller's settings (the text carries its UTC offset).
  const names = await knex.transaction(async (trx) => {
    await trx.raw(`SET LOCAL DateStyle = 'ISO, YMD'`);
    const { rows } = (await trx.raw(
      `SELECT name FROM (
         SELECT c.relname AS name,
                (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper_bound
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = ?::regclass
       ) p
       WHERE upper_bound <= LEAST(?::timestamptz, now())
       ORDER BY upper_bound`,
      [table, cutoff.toISOString()],
    )) as { rows: { name: string }[] };
    return rows.map((r) => r.name);
  });
  const dropped: string[] = [];
  // One transaction (and one short lock on the parent) per partition, so inserts wait for one drop at a time. DROP
  // takes ACCESS EXCLUSIVE on the parent before anything else, so while it waits it holds nothing; lock_timeout
  // bounds how long the writers queued behind it wait.
  for (const name of names) {
    await boundedDdl(knex, opts, async (trx) => {
      await trx.raw(`DROP TABLE IF EXISTS ??`, [name]);
    });
    dropped.push(name);
  }
  return dropped;
}
