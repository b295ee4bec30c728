// Database handle: PostgreSQL through pg when DATABASE_URL is set, else embedded PGlite in DATA_DIR.
// Both are reached through the same knex API so every query in store/ runs unchanged on either.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { PGlite, types } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';

export type Db = Knex;

export interface Database {
  readonly knex: Knex;
  readonly kind: 'pg' | 'pglite';
  poolStats(): { used: number; free: number; pending: number };
  /** Throws when the database does not answer. */
  ping(): Promise<void>;
  /** The read replica's handle (DATABASE_READ_URL), closed with this one; see store/read-replica.ts. */
  readonly replica?: Database;
  close(): Promise<void>;
}

export interface DbOptions {
  databaseUrl: string;
  dataDir: string;
  poolMax: number;
  /** A streaming replica of databaseUrl; '' or absent = none. */
  readUrl?: string;
}

// pg returns int8/numeric as strings; keep it that way on both drivers (no silent precision loss), and convert
// where a number is wanted, in the store function that reads it.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);

export async function openDatabase(opts: DbOptions): Promise<Database> {
  if (!opts.databaseUrl) {
    if (opts.readUrl) throw new Error('DATABASE_READ_URL is set without DATABASE_URL: the embedded database has no replica');
    return openPglite(opts.dataDir);
  }
  const primary = openPostgres(opts.databaseUrl, opts.poolMax);
  if (!opts.readUrl) return primary;
  // Opening connects nothing yet (pools start empty): an unreachable replica does not keep the service from starting.
  const replica = openPostgres(opts.readUrl, opts.poolMax);
  return { ...primary, replica, close: () => Promise.all([primary.close(), replica.close()]).then(() => undefined) };
}

interface TarnPool {
  readonly max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

function poolStatsOf(knex: Knex): { used: number; free: number; pending: number } {
  const pool = (knex.client as { pool?: TarnPool }).pool;
  if (!pool) return { used: 0, free: 0, pending: 0 };
  return { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() };
}

async function ping(knex: Knex): Promise<void> {
  await knex.raw('select 1');
}

function openPostgres(url: string, poolMax: number): Database {
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: poolMax } });
  return { knex, kind: 'pg', poolStats: () => poolStatsOf(knex), ping: () => ping(knex), close: () => knex.destroy() };
}

async function openPglite(dataDir: string): Promise<Database> {
  const dir = path.resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  // PGlite has no cross-process lock and a second opener can corrupt the directory, so we take one.
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, { stale: 15_000, update: 5_000, lockfilePath: path.join(dir, 'nostrx.lock') });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED') {
      throw new Error(`the data directory ${dir} is in use by another nostrx process; stop it or set DATA_DIR to another directory`, { cause: err });
    }
    throw err;
  }
  const pglite = new PGlite(path.join(dir, 'pglite'), {
    parsers: {
      [types.INT8]: (v: string) => v,
      [types.NUMERIC]: (v: string) => v,
      [types.BYTEA]: (v: string) => Buffer.from(v.slice(2), 'hex'),
    },
  });
  await pglite.waitReady;
  const config = { client: ClientPgLite, dialect: 'postgres', connection: () => ({ pglite }) };
  const knex = knexFactory(config as unknown as Knex.Config);
  return {
    knex,
    kind: 'pglite',
    poolStats: () => poolStatsOf(knex),
    ping: () => ping(knex),
    close: async () => {
      try {
        await knex.destroy(); // knex-pglite closes the PGlite instance it was given
        if (!pglite.closed) await pglite.close();
      } finally {
        await release();
      }
    },
  };
}

/**
 * True when the database has a single connection (the embedded PGlite): there, a transaction kept open while a
 * client reads slowly would stall every other query of the service.
 */
export function hasOneConnection(db: Knex): boolean {
  return (db.client as { pool?: TarnPool }).pool?.max === 1;
}

interface RowsOf<R> {
  readonly rows: R[];
}

/** A statement written with `?` placeholders, numbered `$1…$n` in order for queryPrepared. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/**
 * Runs a hot statement as a named prepared statement (node-pg keeps it per connection): Postgres parses and
 * plans it once per connection instead of at every call, which is most of what a small statement costs it.
 * `text` uses $1…$n. In a transaction it runs on the transaction's connection. PGlite is in-process, with no
 * round trip to save: there it is a plain query.
 */
export async function queryPrepared<R>(db: Knex, name: string, text: string, values: readonly unknown[]): Promise<R[]> {
  const client = db.client as { acquireConnection(): Promise<unknown>; releaseConnection(conn: unknown): Promise<void> };
  const conn = await client.acquireConnection();
  try {
    if (conn instanceof pg.Client) return (await conn.query<R & pg.QueryResultRow>({ name, text, values: [...values] })).rows;
    return ((await (conn as { query(text: string, values: readonly unknown[]): Promise<RowsOf<R>> }).query(text, values)) as RowsOf<R>).rows;
  } finally {
    await client.releaseConnection(conn);
  }
}
