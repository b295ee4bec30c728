// The monthly partitions of usage_events and relay_publishes as the tests see them: their names, and the name of
// the month `offset` months from a date.
import type { Knex } from 'knex';
import type { PartitionedTable } from '../../src/store/partitions.js';

export async function partitionsOf(knex: Knex, table: PartitionedTable): Promise<string[]> {
  const { rows } = (await knex.raw(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ?::regclass ORDER BY 1`,
    [table],
  )) as { rows: { name: string }[] };
  return rows.map((r) => r.name);
}

export function monthPartition(table: PartitionedTable, from: Date, offset: number): string {
  const d = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + offset, 1));
  return `${table}_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}
