// Batches as one statement: one field of many rows bound as ONE array parameter, for
// `unnest(CAST(:x AS type[]))` (knex) or `unnest(CAST($n AS type[]))` (a prepared statement, db.ts queryPrepared),
// so a batch costs one statement however many rows it holds.
import type { Knex } from 'knex';

/** The column maker for `rows`: `col((r) => r.id)` is the ids of all rows as one bound array. */
export function arrayColumns<T>(db: Knex, rows: readonly T[]): (field: (row: T) => unknown) => Knex.Raw {
  // the cast only satisfies knex's binding type: pg sends a JS array as a Postgres array whatever its elements
  return (field) => db.raw('?', [rows.map(field) as unknown as string[]]);
}

/** The same for a prepared statement's positional values: `col((r) => r.id)` is the ids of all rows as an array. */
export function preparedColumns<T>(rows: readonly T[]): <V>(field: (row: T) => V) => V[] {
  return (field) => rows.map(field);
}
