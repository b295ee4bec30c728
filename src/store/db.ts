// Database handle: PostgreSQL through pg when DATABASE_URL is set, else embedded PGlite in DATA_DIR.
// Both are reached through the same knex API so every query in store/ runs unchanged on either.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { PGlite, types } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';

export interface Database {
  readonly knex: Knex;
  readonly kind: 'pg' | 'pglite';
  poolStats(): { used: number; free: number; pending: number };
  /** Throws when the database does not answer. */
  ping(): Promise<void>;
  /** The read replica's handle (DATABASE_READ_URL), closed with this one; see store/read-replica.ts. */
  readonly replica?: Database;
  /**
   * Runs `fn` on a handle without the limits of DbOptions.limits (migrations and partition DDL at start, which may
   * rightly take long on a large database): a short-lived connection of its own on PostgreSQL, the one handle on PGlite.
   */
  withoutLimits<T>(fn: (knex: Knex) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** How long PostgreSQL may take, so that an outage (down, refusing, slow, half-open) fails queries in bounded time. */
interface DbLimits {
  /** Opening a connection (a host that accepts nothing is given up on after it). */
  readonly connectMs: number;
  /** Waiting for a pooled connection (while no connection can be made, a query fails after it). */
  readonly acquireMs: number;
  /** statement_timeout; a connection with no answer at all 1 s later is taken as dead. 0 = no limit. */
  readonly queryMs: number;
}

export interface DbOptions {
  databaseUrl: string;
  dataDir: string;
  poolMax: number;
  /**
   * Connections the pool keeps open when idle, once made (at most poolMax; default 0). An idle pool otherwise closes
   * them after 30 s, and the first statement after a quiet spell pays a new connection: the connect, a backend
   * with empty caches, and each hot statement prepared again.
   */
  poolMin?: number;
  /** A streaming replica of databaseUrl; '' or absent = none. */
  readUrl?: string;
  /** Without it, nothing is bounded (tools and tests that run migrations). */
  limits?: DbLimits;
  /** The driver's and pool's own warnings (e.g. a broken connection taken out of the pool). */
  onWarning?: (message: string) => void;
}

// pg returns int8/numeric as strings; keep it that way on both drivers (no silent precision loss), and convert
// where a number is wanted, in the store function that reads it.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);

export async function openDatabase(opts: DbOptions): Promise<Database> {
  if (!opts.databaseUrl) {
    if (opts.readUrl)
      throw new Error('DATABASE_READ_URL is set without DATABASE_URL: the embedded database has no replica');
    return openPglite(opts.dataDir);
  }
  const primary = openPostgres(opts);
  if (!opts.readUrl) return primary;
  // Opening connects nothing yet (pools start empty): an unreachable replica does not keep the service from starting.
  // The replica gets the primary's limits: a replica that stops answering must not stall reads either.
  const replica = openPostgres({ ...opts, databaseUrl: opts.readUrl });
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

/** Grace after statement_timeout before a connection with no answer at all is taken as dead. */
const DEAD_AFTER_MS = 1000;
/** No statement of ours leaves a transaction idle for long: one idle this long has lost its client. */
const IDLE_TRANSACTION_MS = 60_000;

// No JIT compilation: it starts when a plan's estimated cost passes jit_above_cost, and a generic plan's estimates
// (100 rows for a JSON array of reads, ten rounds for a recursive scan) pass it for statements that run in a
// millisecond; compiling one took ~17 ms, every execution (docs/benchmarks.md, "A leaner event store").
const SESSION_OPTIONS = '-c jit=off';

/**
 * The URL and session options a connection is opened with: ours first, then the operator's own from the URL's
 * `options=` (a managed server may need one, such as an endpoint name), so that an operator's `-c` for the same
 * setting wins. pg takes a URL's `options` over the one passed beside it, dropping ours: it leaves the URL here.
 */
function sessionOf(url: string): { connectionString: string; options: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { connectionString: url, options: SESSION_OPTIONS }; // pg reports what it cannot parse
  }
  const theirs = parsed.searchParams.get('options');
  if (theirs === null) return { connectionString: url, options: SESSION_OPTIONS };
  parsed.searchParams.delete('options');
  return { connectionString: parsed.toString(), options: `${SESSION_OPTIONS} ${theirs}`.trim() };
}

/** The pg settings that bound every wait: connect, statement, and the wait for any answer (read timeout). */
function connectionOf(url: string, limits: DbLimits | undefined): Knex.PgConnectionConfig {
  if (!limits) return sessionOf(url);
  return {
    ...sessionOf(url),
    connectionTimeoutMillis: limits.connectMs,
    // A peer that vanished without closing (host down, partition) is noticed by the kernel on an idle connection.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(limits.queryMs > 0 ? { statement_timeout: limits.queryMs, query_timeout: limits.queryMs + DEAD_AFTER_MS } : {}),
    // A transaction whose client vanished would hold its locks until the server's own keepalive notices (hours).
    idle_in_transaction_session_timeout: IDLE_TRANSACTION_MS,
  };
}

/**
 * A connection whose last query got no answer in time (pg's read timeout) is still waiting for it: it would hold
 * every later query behind that one, for good if the answer was lost. The pool closes it instead of handing it out.
 */
function stillAnswering(conn: unknown): boolean {
  return (conn as { readyForQuery?: boolean }).readyForQuery !== false;
}

const READ_TIMEOUT = /Query read timeout$/;

/**
 * A query that got no answer at all (pg's read timeout) leaves its connection waiting for that answer, maybe for
 * good: the connection is closed at once (pg's end() cuts a connection with a query in flight), so that what is
 * queued behind it, such as a transaction's ROLLBACK, fails now instead of waiting out a timeout of its own.
 * `connections`: the pool's connections by knex's id for them (filled by `registered`).
 */
function closeOnReadTimeout(
  connections: ReadonlyMap<string, pg.Client>,
): (err: unknown, q: { __knexUid?: string }) => void {
  return (err, q) => {
    if (err instanceof Error && READ_TIMEOUT.test(err.message) && q.__knexUid) void connections.get(q.__knexUid)?.end();
  };
}

/** The pool's afterCreate hook: keeps each new connection under knex's id for it until it ends. */
function registered(
  connections: Map<string, pg.Client>,
): (conn: pg.Client, done: (err: Error | null, conn: pg.Client) => void) => void {
  return (conn, done) => {
    const uid = (conn as pg.Client & { __knexUid?: string }).__knexUid;
    if (uid) {
      connections.set(uid, conn);
      conn.once('end', () => connections.delete(uid));
    }
    done(null, conn);
  };
}

/** knex's own log (to the console by default) sent to `onWarning` instead, when one is given. */
function knexLog(onWarning: ((message: string) => void) | undefined): Pick<Knex.Config, 'log'> {
  if (!onWarning) return {};
  const warn = (message: unknown) => onWarning(String(message));
  return { log: { warn, error: warn, deprecate: warn, debug: () => undefined } };
}

function openPostgres(opts: DbOptions): Database {
  const { databaseUrl: url, limits } = opts;
  const connections = new Map<string, pg.Client>();
  const knex = knexFactory({
    client: 'pg',
    connection: connectionOf(url, limits),
    pool: {
      min: Math.min(opts.poolMin ?? 0, opts.poolMax),
      max: opts.poolMax,
      ...(limits ? { validate: stillAnswering, afterCreate: registered(connections) } : {}),
    },
    ...(limits ? { acquireConnectionTimeout: limits.acquireMs } : {}),
    ...knexLog(opts.onWarning),
  });
  if (limits) knex.on('query-error', closeOnReadTimeout(connections));
  return {
    knex,
    kind: 'pg',
    poolStats: () => poolStatsOf(knex),
    ping: () => ping(knex),
    async withoutLimits(fn) {
      if (!limits) return fn(knex);
      const own = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 }, ...knexLog(opts.onWarning) });
      try {
        return await fn(own);
      } finally {
        await own.destroy();
      }
    },
    close: () => knex.destroy(),
  };
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
      throw new Error(
        `the data directory ${dir} is in use by another nostrx process; stop it or set DATA_DIR to another directory`,
        { cause: err },
      );
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
    withoutLimits: (fn) => fn(knex),
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
  const client = db.client as {
    acquireConnection(): Promise<unknown>;
    releaseConnection(conn: unknown): Promise<void>;
    emit(event: 'query', query: { sql: string; bindings: readonly unknown[]; method: 'raw' }): boolean;
    listenerCount(event: 'query'): number;
  };
  const conn = await client.acquireConnection();
  // told as knex tells its own statements, so that what listens to the handle (a log, a test) sees this one too; the
  // hot statements build nothing for it when nobody listens
  if (client.listenerCount('query') > 0) client.emit('query', { sql: text, bindings: values, method: 'raw' });
  try {
    if (conn instanceof pg.Client) {
      try {
        return (await conn.query<R & pg.QueryResultRow>({ name, text, values: [...values] })).rows;
      } catch (err) {
        // no answer at all: the connection is closed (see closeOnReadTimeout)
        if (err instanceof Error && READ_TIMEOUT.test(err.message)) void conn.end();
        throw err;
      }
    }
    return (
      (await (conn as { query(text: string, values: readonly unknown[]): Promise<RowsOf<R>> }).query(
        text,
        values,
      )) as RowsOf<R>
    ).rows;
  } finally {
    await client.releaseConnection(conn);
  }
}
