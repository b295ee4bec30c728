// Monthly partitions of the two partitioned tables (usage_events by occurred_at, relay_publishes by created_at).
// Partitions are named <table>_yYYYYmMM and cover one calendar month in UTC, whatever the session's TimeZone.
// The service is to call ensureMonthlyPartitions at start and daily; migration 0004 calls it once so a freshly
// migrated database accepts rows at once. Retention drops whole months with dropPartitionsBefore.
import type { Knex } from 'knex';

export const partitionedTables = ['usage_events', 'relay_publishes'] as const;
export type PartitionedTable = (typeof partitionedTables)[number];

// Errors a concurrent creator of the same partition can cause us: the name is taken (42P07 duplicate_table,
// 42710 duplicate_object, or 23505 on the catalog's unique index when both inserted at once) or the range
// now overlaps the other's partition (42P17 invalid_object_definition).
const raceCodes = new Set(['42P07', '42710', '23505', '42P17']);

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

async function partitionNames(knex: Knex, table: PartitionedTable): Promise<Set<string>> {
  const { rows } = (await knex.raw(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ?::regclass`,
    [table],
  )) as { rows: { name: string }[] };
  return new Set(rows.map((r) => r.name));
}

/**
 * Creates the monthly partitions of usage_events and relay_publishes for the month of `now` through
 * `monthsAhead` months later (UTC). Idempotent, and safe when several processes run it at once. Returns the
 * partitions this call created (empty when they all existed).
 */
export async function ensureMonthlyPartitions(knex: Knex, now: Date, monthsAhead = 1): Promise<string[]> {
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0) throw new RangeError(`monthsAhead must be an integer >= 0, got ${monthsAhead}`);
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
      const sql =
        `CREATE TABLE "${range.name}" PARTITION OF "${table}" ` +
        `FOR VALUES FROM ('${range.from}') TO ('${range.to}')`;
      try {
        // A nested transaction is a savepoint when `knex` is itself a transaction (as in a migration), so a
        // lost race rolls back this statement only and leaves the caller's transaction usable.
        await knex.transaction(async (trx) => {
          await trx.raw(sql);
        });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // Lost the race: another process created the same partition between our look-up and our CREATE.
        if (typeof code === 'string' && raceCodes.has(code) && (await partitionNames(knex, table)).has(range.name)) continue;
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
export async function dropPartitionsBefore(knex: Knex, table: PartitionedTable, cutoff: Date): Promise<string[]> {
  if (!(partitionedTables as readonly string[]).includes(table)) throw new Error(`${String(table)} is not a partitioned table`);
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
  // One statement (and one short lock on the parent) per partition, so inserts wait for one drop at a time.
  for (const name of names) {
    await knex.raw(`DROP TABLE IF EXISTS ??`, [name]);
    dropped.push(name);
  }
  return dropped;
}
