// What PostgreSQL did for one scenario, per accepted event: the CPU time of the server processes serving the bench
// database (/proc), the WAL their changes wrote (pg_walinspect, by relation), commits and rows (pg_stat_database),
// and, with the wire counter (bench/pg-counter.ts), the statements, round trips and parses the service sent.
//
// The server is shared with other work (tests of other checkouts), so nothing here reads a cluster-wide figure:
// - CPU: the client backends whose pg_stat_activity row names this database (the service's connections), sampled
//   every 200 ms; a backend that exits between samples loses at most its last 200 ms. Autovacuum workers on the
//   database are reported apart: they clean up after whichever scenario came before as much as after this one.
//   The WAL writer and checkpointer serve every database and are not counted.
// - WAL: the records between two positions whose block references name a relation of this database, and the
//   commit records of their transactions; a temporary physical replication slot keeps those segments until they
//   are read (it goes with this connection). Full-page images (the first change of a page after a checkpoint) are
//   reported apart: they depend on when checkpoints fall, not on the code.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { countsBetween, type WireCounts } from './pg-counter.js';

interface WalShare {
  readonly relation: string;
  readonly bytes: number;
  readonly fpiBytes: number;
  readonly records: number;
}

interface DbFigures {
  /** CPU of the database's client backends over the scenario, per accepted event (µs). */
  readonly pg_cpu_us_per_event: number;
  readonly pg_cpu_ms: number;
  /** CPU ms of autovacuum workers on the database meanwhile (not in pg_cpu_ms). */
  readonly autovacuum_cpu_ms: number;
  /** WAL records' bytes without full-page images (those depend on when checkpoints fall, not on the code). */
  readonly wal_bytes_per_event: number;
  /** Full-page images, apart. */
  readonly wal_fpi_bytes_per_event: number;
  readonly commits_per_event: number;
  readonly rows_written_per_event: { inserted: number; updated: number; deleted: number; hot_updated: number };
  /** Updated rows per accepted event by table, and how many of them were heap-only (HOT). */
  readonly updates_by_table: Record<string, { updated: number; hot: number }>;
  /** WAL bytes (without full-page images) per accepted event by relation (tables and indexes), largest first. */
  readonly wal_by_relation: Record<string, number>;
  /** With the wire counter only. */
  readonly statements_per_event?: number;
  readonly round_trips_per_event?: number;
  readonly parses_per_event?: number;
  readonly statements?: Record<string, number>;
}

interface Mark {
  readonly lsn: string;
  readonly stats: Record<string, number>;
  readonly tables: Map<string, { upd: number; hot: number }>;
  readonly wire?: WireCounts;
}

export interface DbProbe {
  begin(): Promise<void>;
  /** The figures since begin(), per `accepted` event. */
  end(accepted: number): Promise<DbFigures>;
  close(): Promise<void>;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return undefined; // exited
  }
}

/** The wire counter on a thread of its own, in front of the server of `databaseUrl`. */
export async function startWireCounterThread(
  databaseUrl: string,
): Promise<{ url: string; snapshot(): Promise<WireCounts>; close(): Promise<void> }> {
  const target = new URL(databaseUrl);
  const worker = new Worker(new URL('./pg-counter-worker.js', import.meta.url), {
    workerData: { host: target.hostname, port: Number(target.port || 5432) },
  });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port));
    worker.once('error', reject);
  });
  const via = new URL(databaseUrl);
  via.hostname = '127.0.0.1';
  via.port = String(port);
  return {
    url: via.toString(),
    snapshot: () =>
      new Promise<WireCounts>((resolve) => {
        worker.once('message', (m: { counts: WireCounts }) => resolve(m.counts));
        worker.postMessage('snapshot');
      }),
    close: async () => {
      worker.postMessage('close');
      await worker.terminate();
    },
  };
}

const STAT_COLUMNS = ['xact_commit', 'xact_rollback', 'tup_inserted', 'tup_updated', 'tup_deleted'] as const;

/**
 * Opens the probe's own connection to the bench database (`databaseUrl`, direct, never through the wire counter).
 * `wire` is the counter's snapshot function when the service's connections go through it.
 */
export async function openDbProbe(
  databaseUrl: string,
  slotName: string,
  wire?: () => Promise<WireCounts>,
): Promise<DbProbe> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const { rows: dbRows } = await client.query<{ oid: string; pid: number }>(
    'SELECT CAST(oid AS text) AS oid, pg_backend_pid() AS pid FROM pg_database WHERE datname = current_database()',
  );
  const dbOid = dbRows[0]!.oid;
  const ownPid = dbRows[0]!.pid;
  let mark: Mark | undefined;
  const base = new Map<number, number>(); // pid → ticks when first seen (0 when it started after begin)
  const last = new Map<number, number>();
  let timer: NodeJS.Timeout | undefined;
  let sampling: Promise<void> = Promise.resolve();

  const autovacuum = new Set<number>();
  async function backends(): Promise<number[]> {
    const { rows } = await client.query<{ pid: number; backend_type: string }>(
      'SELECT pid, backend_type FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1',
      [ownPid],
    );
    for (const r of rows) if (r.backend_type === 'autovacuum worker') autovacuum.add(r.pid);
    return rows.map((r) => r.pid);
  }

  async function sample(first: boolean): Promise<void> {
    for (const pid of await backends()) {
      const t = cpuTicks(pid);
      if (t === undefined) continue;
      if (!base.has(pid)) base.set(pid, first ? t : 0);
      last.set(pid, t);
    }
  }

  async function dbStats(): Promise<Record<string, number>> {
    const { rows } = await client.query<Record<string, string>>(
      `SELECT ${STAT_COLUMNS.join(', ')}, (SELECT sum(n_tup_hot_upd) FROM pg_stat_user_tables) AS hot FROM pg_stat_database WHERE datname = current_database()`,
    );
    return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
  }

  async function tableUpdates(): Promise<Map<string, { upd: number; hot: number }>> {
    const { rows } = await client.query<{ relname: string; upd: string; hot: string }>(
      'SELECT relname, n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables',
    );
    return new Map(rows.map((r) => [r.relname, { upd: Number(r.upd), hot: Number(r.hot) }]));
  }

  async function walShares(from: string, to: string): Promise<WalShare[]> {
    const re = `rel [0-9]+/${dbOid}/([0-9]+)`;
    const { rows } = await client.query<{ relation: string; bytes: string; fpi: string; records: string }>(
      `WITH r AS (
         SELECT CAST(xid AS text) AS xid, resource_manager AS rm, record_length AS len, fpi_length AS fpi,
                substring(block_ref from CAST($3 AS text)) AS node
         FROM pg_get_wal_records_info(CAST($1 AS pg_lsn), CAST($2 AS pg_lsn))
       ),
       ours AS (SELECT * FROM r WHERE node IS NOT NULL),
       xids AS (SELECT DISTINCT xid FROM ours WHERE xid <> '0')
       SELECT COALESCE(CAST(pg_filenode_relation(0, CAST(node AS oid)) AS regclass)::text, 'relfilenode ' || node) AS relation,
              sum(len) AS bytes, sum(fpi) AS fpi, count(*) AS records
       FROM ours GROUP BY 1
       UNION ALL
       SELECT '(commit records)', COALESCE(sum(len), 0), COALESCE(sum(fpi), 0), count(*) FROM r WHERE rm = 'Transaction' AND xid IN (SELECT xid FROM xids)`,
      [from, to, re],
    );
    return rows
      .map((r) => ({
        relation: r.relation,
        bytes: Number(r.bytes),
        fpiBytes: Number(r.fpi),
        records: Number(r.records),
      }))
      .sort((a, b) => b.bytes - a.bytes);
  }

  return {
    async begin() {
      // keeps the WAL from here on until this connection ends (a temporary slot), so it can still be read after
      await client.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND temporary AND active_pid = pg_backend_pid()',
        [slotName],
      );
      await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slotName]);
      const { rows } = await client.query<{ lsn: string }>('SELECT CAST(pg_current_wal_insert_lsn() AS text) AS lsn');
      base.clear();
      last.clear();
      autovacuum.clear();
      await sample(true);
      mark = {
        lsn: rows[0]!.lsn,
        stats: await dbStats(),
        tables: await tableUpdates(),
        ...(wire ? { wire: await wire() } : {}),
      };
      timer = setInterval(() => {
        sampling = sampling.then(() => sample(false)).catch(() => undefined);
      }, 200);
    },

    async end(accepted) {
      if (!mark) throw new Error('end() before begin()');
      clearInterval(timer);
      await sampling;
      await sample(false);
      let ticks = 0;
      let vacuumTicks = 0;
      for (const [pid, t] of last) {
        if (autovacuum.has(pid)) vacuumTicks += t - (base.get(pid) ?? 0);
        else ticks += t - (base.get(pid) ?? 0);
      }
      const wireAfter = wire ? await wire() : undefined;
      const stats = await dbStats();
      const tables = await tableUpdates();
      const { rows } = await client.query<{ lsn: string; ahead: boolean }>(
        'SELECT CAST(pg_current_wal_flush_lsn() AS text) AS lsn, pg_current_wal_flush_lsn() > CAST($1 AS pg_lsn) AS ahead',
        [mark.lsn],
      );
      // a read-only scenario may end with nothing flushed past where it began: no WAL to read
      const shares = rows[0]!.ahead ? await walShares(mark.lsn, rows[0]!.lsn) : [];
      await client.query('SELECT pg_drop_replication_slot($1)', [slotName]);
      const n = Math.max(1, accepted);
      const per = (x: number, digits = 1) => Math.round((x / n) * 10 ** digits) / 10 ** digits;
      const delta = (k: string) => stats[k]! - mark!.stats[k]!;
      const fpiBytes = shares.reduce((s, r) => s + r.fpiBytes, 0);
      const walBytes = shares.reduce((s, r) => s + r.bytes, 0) - fpiBytes;
      const updates: Record<string, { updated: number; hot: number }> = {};
      for (const [table, after] of tables) {
        const before = mark.tables.get(table) ?? { upd: 0, hot: 0 };
        if (after.upd > before.upd)
          updates[table] = { updated: per(after.upd - before.upd, 3), hot: per(after.hot - before.hot, 3) };
      }
      const figures: DbFigures = {
        pg_cpu_us_per_event: per(ticks * TICK_MS * 1000, 0),
        pg_cpu_ms: ticks * TICK_MS,
        autovacuum_cpu_ms: vacuumTicks * TICK_MS,
        wal_bytes_per_event: per(walBytes, 0),
        wal_fpi_bytes_per_event: per(fpiBytes, 0),
        commits_per_event: per(delta('xact_commit'), 3),
        rows_written_per_event: {
          inserted: per(delta('tup_inserted'), 2),
          updated: per(delta('tup_updated'), 2),
          deleted: per(delta('tup_deleted'), 2),
          hot_updated: per(delta('hot'), 2),
        },
        updates_by_table: updates,
        wal_by_relation: Object.fromEntries(
          shares
            .map((r) => [r.relation, per(r.bytes - r.fpiBytes, 0)] as const)
            .filter(([, b]) => b >= 1)
            .sort((a, b) => b[1] - a[1]),
        ),
      };
      const wireBefore = mark.wire;
      mark = undefined;
      if (!wireBefore || !wireAfter) return figures;
      const c = countsBetween(wireBefore, wireAfter);
      return {
        ...figures,
        statements_per_event: per(c.statements, 2),
        round_trips_per_event: per(c.roundTrips, 2),
        parses_per_event: per(c.parses, 2),
        // per accepted event, the statements run at least once per 100 events
        statements: Object.fromEntries(
          Object.entries(c.byStatement)
            .sort((a, b) => b[1] - a[1])
            .filter(([, k]) => k * 100 >= n)
            .map(([s, k]) => [s, per(k, 3)]),
        ),
      };
    },

    close: () => client.end(),
  };
}
