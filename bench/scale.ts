// The `scale` scenario of `npm run bench` (BENCH_SCENARIOS=scale; not in the default list: it takes minutes): the
// service at the size of a production relay. In one run:
// 1. the admission scenario on an empty store (the reference);
// 2. BENCH_SCALE_EVENTS signed events (default 1,000,000 from 10,000 authors, bench/generate-events.ts: kinds 0, 1,
//    3, 6, 7, 30023 and 5 with e, p and t tags over a year; the file is kept and reused) imported into a new
//    database with `npm run import` (src/import-cli.ts) as an operator would: its events/s;
// 3. the storage it takes: table and index bytes per stored event against the JSON line's bytes;
// 4. reads over 8 connections: author timelines saturated and at a steady 500 REQ/s, an author's events of any
//    kind (a profile page), a thread (#e), the global feed, a one-hour window and COUNT by author, each with
//    EXPLAIN ANALYZE of the statement the service sends;
// 5. the admission scenario again, on the full store: its ratio to step 1.
// With BENCH_SCALE_PEER_PORT and BENCH_SCALE_PEER_DB, each read is also sent to another relay that holds the same
// dataset, right after ours: a peer's line beside ours, on the same machine in the same minutes.
// Every load loop is bounded in count and in time; all traffic goes to 127.0.0.1.
import type { ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import knexFactory, { type Knex } from 'knex';
import type { WebSocket } from 'ws';
import { openDatabase } from '../src/store/db.js';
import { explainFilter } from '../src/store/events.js';
import { loadConfig } from '../src/config.js';
import { effectiveLimit, parseFilter, type FilterLimits } from '../src/nips/filter.js';
import {
  databaseUrlOf,
  dropDatabase,
  lastJsonLine,
  recreateDatabase,
  runNode,
  serviceCpuMs,
  stopService,
} from './common.js';
import { openDbProbe, type DbProbe } from './db-probe.js';
import { connectTo } from './publish.js';
import { readOn, type ReadLoad, type ReadRequest, type ReadResult } from './reads.js';

export interface ScaleDeps {
  readonly adminUrl: string;
  readonly dbName: string;
  readonly port: number;
  readonly startService: (databaseUrl: string) => Promise<ChildProcess>;
  /** The existing admission scenario, against the service now running on `databaseUrl`. */
  readonly admission: (databaseUrl: string) => Promise<Record<string, unknown>>;
  readonly log: (msg: string) => void;
}

const env = process.env;
const events = Number(env.BENCH_SCALE_EVENTS ?? 1_000_000);
const keys = Number(env.BENCH_SCALE_KEYS ?? 10_000);
const file = env.BENCH_SCALE_FILE ?? path.join(tmpdir(), `nostrx-bench-${events}-${keys}.jsonl`);
const connections = 8;
// 1: the database a run before kept (BENCH_SCALE_KEEP=1) is measured again, without the admission on an empty
// store and the import (reads only, and admission on the full store)
const reuse = env.BENCH_SCALE_REUSE === '1';
// some of the read scenarios only (comma-separated names), and the admission on the full store only when the list
// names `admission` too: for profiling, and for A/B runs of one step
const onlyReads = env.BENCH_SCALE_READS?.split(',');
// the service's limits (the same environment starts it), for EXPLAIN of the statement it sends
const limits: FilterLimits = loadConfig(env);

async function ensureDataset(log: (msg: string) => void): Promise<{ lines: number; bytes: number }> {
  if (!existsSync(file)) {
    log(`generating ${events} events from ${keys} keys into ${file}`);
    const t0 = performance.now();
    await runNode(
      ['dist/bench/generate-events.js', '--events', String(events), '--keys', String(keys), '--out', `${file}.part`],
      {},
    );
    renameSync(`${file}.part`, file);
    log(`generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  let lines = 0;
  for await (const _ of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) lines++;
  return { lines, bytes: statSync(file).size };
}

async function importDataset(databaseUrl: string): Promise<Record<string, unknown>> {
  const state = path.join(tmpdir(), 'nostrx-bench-scale.import-state.json');
  const report = path.join(tmpdir(), 'nostrx-bench-scale.rejected.jsonl');
  const t0 = performance.now();
  const out = await runNode(['dist/src/import-cli.js', file, '--restart', '--state', state, '--report', report], {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
  });
  const seconds = (performance.now() - t0) / 1000;
  // the CLI's summary line (src/import-cli.ts); its own seconds leave out the start-up and the migrations
  const summary = lastJsonLine(out) as Record<string, number>;
  return {
    seconds: Math.round(seconds * 10) / 10,
    lines_per_s: Math.round((summary.lines ?? 0) / seconds),
    imported_per_s: Math.round((summary.imported ?? 0) / seconds),
    summary,
  };
}

interface Storage {
  stored_events: number;
  table_bytes: number;
  index_bytes: number;
  bytes_per_event: number;
  json_bytes_per_event: number;
  ratio: number;
  by_relation: Record<string, { table_mb: number; indexes_mb: number }>;
}

async function storage(db: Knex, json: { lines: number; bytes: number }): Promise<Storage> {
  const { rows } = (await db.raw(
    `SELECT c.relname AS name, pg_table_size(c.oid)::bigint AS table_bytes, pg_indexes_size(c.oid)::bigint AS index_bytes
     FROM pg_class c WHERE c.relname IN ('nostr_events', 'nostr_event_tags')`,
  )) as { rows: { name: string; table_bytes: string; index_bytes: string }[] };
  const stored = Number(((await db('nostr_events').count({ n: '*' })) as { n: string }[])[0]!.n);
  const table = rows.reduce((s, r) => s + Number(r.table_bytes), 0);
  const index = rows.reduce((s, r) => s + Number(r.index_bytes), 0);
  const mb = (n: string) => Math.round(Number(n) / 1048576);
  const perEvent = Math.round((table + index) / Math.max(1, stored));
  const jsonPerEvent = Math.round(json.bytes / Math.max(1, json.lines));
  return {
    stored_events: stored,
    table_bytes: table,
    index_bytes: index,
    bytes_per_event: perEvent,
    json_bytes_per_event: jsonPerEvent,
    ratio: Math.round((perEvent / jsonPerEvent) * 100) / 100,
    by_relation: Object.fromEntries(
      rows.map((r) => [r.name, { table_mb: mb(r.table_bytes), indexes_mb: mb(r.index_bytes) }]),
    ),
  };
}

/** What the reads pick from: every author, ids that replies and reactions name, the store's time span. */
interface Sample {
  readonly authors: string[];
  readonly referenced: string[];
  readonly from: number;
  readonly to: number;
}

async function sample(db: Knex): Promise<Sample> {
  const authors = ((await db('users').pluck('nostr_public_key')) as string[]).filter(Boolean);
  // an e tag's event id is stored as its 32 bytes (migration 0030)
  const referenced = (
    (await db.raw(
      `SELECT DISTINCT encode(value, 'hex') AS id FROM nostr_event_tags WHERE name = 'e' AND octet_length(value) = 32
       LIMIT 5000`,
    )) as { rows: { id: string }[] }
  ).rows.map((r) => r.id);
  const span = (await db('nostr_events').min({ from: 'created_at_nostr' }).max({ to: 'created_at_nostr' }).first()) as {
    from: string;
    to: string;
  };
  return { authors, referenced, from: Number(span.from), to: Number(span.to) };
}

/** A deterministic pick, so two runs ask the same things. */
const nth = <T>(xs: readonly T[], i: number): T => xs[(i * 7919) % xs.length]!;

interface ReadScenario {
  readonly name: string;
  readonly request: (i: number) => ReadRequest;
  readonly load: Omit<ReadLoad, 'request'>;
}

function readScenarios(s: Sample): ReadScenario[] {
  const saturated = { count: 200_000, maxSeconds: 15, inflight: 4 };
  const hour = 3600;
  const timeline = (i: number): ReadRequest => ({
    verb: 'REQ',
    filter: { authors: [nth(s.authors, i)], kinds: [1], limit: 20 },
  });
  return [
    { name: 'timeline', request: timeline, load: saturated },
    {
      name: 'timeline_500_per_s',
      request: timeline,
      // at most as many unanswered as the relay keeps open subscriptions per connection (MAX_SUBSCRIPTIONS, 20):
      // past it a REQ is refused, which would count a slow answer as a fast refusal
      load: { count: 10_000, maxSeconds: 25, inflight: 20, ratePerSecond: 500 },
    },
    {
      // a profile page: an author's newest events of every kind
      name: 'author_any_kind',
      request: (i) => ({ verb: 'REQ', filter: { authors: [nth(s.authors, i)], limit: 20 } }),
      load: saturated,
    },
    { name: 'thread', request: (i) => ({ verb: 'REQ', filter: { '#e': [nth(s.referenced, i)] } }), load: saturated },
    { name: 'global', request: () => ({ verb: 'REQ', filter: { kinds: [1], limit: 50 } }), load: saturated },
    {
      name: 'window',
      request: (i) => {
        const since = s.from + ((i * 104_729) % Math.max(1, s.to - s.from - hour));
        return { verb: 'REQ', filter: { since, until: since + hour, limit: 100 } };
      },
      load: saturated,
    },
    {
      name: 'count_by_author',
      request: (i) => ({ verb: 'COUNT', filter: { authors: [nth(s.authors, i)] } }),
      load: saturated,
    },
  ];
}

/** The indexes a plan reads (scans by name), from EXPLAIN's text. */
function indexesIn(plan: readonly string[]): string[] {
  const names = new Set<string>();
  for (const line of plan) {
    const m = /Index (?:Only )?Scan(?: Backward)? using (\S+)|Bitmap Index Scan on (\S+)/.exec(line);
    if (m) names.add((m[1] ?? m[2])!);
  }
  return [...names];
}

async function explained(db: Knex, r: ReadRequest): Promise<{ indexes: string[]; seq_scan: boolean; plan: string[] }> {
  const parsed = parseFilter(r.filter, limits);
  if (!parsed.ok) throw new Error(`bench filter refused: ${parsed.rejection.message}`);
  const f = parsed.value;
  const plan = await explainFilter(db, f, effectiveLimit(f, limits), Math.floor(Date.now() / 1000), r.verb);
  return { indexes: indexesIn(plan), seq_scan: plan.some((l) => l.includes('Seq Scan')), plan };
}

async function withConnections<T>(port: number, work: (conns: WebSocket[]) => Promise<T>): Promise<T> {
  const conns = await Promise.all(Array.from({ length: connections }, () => connectTo(port)));
  try {
    return await work(conns);
  } finally {
    for (const ws of conns) ws.close();
  }
}

/** A relay the reads are sent to: its port on 127.0.0.1 and its process (children included), when known. */
interface ReadTarget {
  readonly port: number;
  readonly pid: number | undefined;
}

/** One read scenario against one relay: rate, latency, and CPU per answered request of its process and backends. */
async function measureRead(
  target: ReadTarget,
  probe: DbProbe,
  sc: ReadScenario,
): Promise<
  ReadResult & {
    service_cpu_us_per_request: number | null;
    pg_cpu_us_per_request: number;
    client_cpu_us_per_request: number;
  }
> {
  const cpu = () => (target.pid === undefined ? undefined : serviceCpuMs(target.pid).process);
  const cpu0 = cpu();
  await probe.begin();
  const client0 = process.cpuUsage();
  const measured = await withConnections(target.port, (conns) => readOn(conns, { ...sc.load, request: sc.request }));
  const client = process.cpuUsage(client0);
  const pg = await probe.end(measured.answered);
  const cpu1 = cpu();
  return {
    ...measured,
    service_cpu_us_per_request:
      cpu0 !== undefined && cpu1 !== undefined
        ? Math.round(((cpu1 - cpu0) * 1000) / Math.max(1, measured.answered))
        : null,
    pg_cpu_us_per_request: pg.pg_cpu_us_per_event,
    // this process, the load generator: on a 2-core machine its share is taken from the service and PostgreSQL
    client_cpu_us_per_request: Math.round((client.user + client.system) / Math.max(1, measured.answered)),
  };
}

/**
 * BENCH_SCALE_PEER_PORT: another relay on 127.0.0.1 that holds the same dataset (loaded by its own means), sent
 * the same reads right after ours, scenario by scenario, for a line beside ours; BENCH_SCALE_PEER_DB: its
 * database (its backends' CPU, and its storage); BENCH_SCALE_PEER_PID: its process (CPU, with its children).
 */
interface Peer extends ReadTarget {
  readonly databaseUrl: string;
  /** NIP-45: COUNT is only sent to a relay that lists it in NIP-11. */
  readonly counts: boolean;
}

async function peerFromEnv(): Promise<Peer | undefined> {
  if (!env.BENCH_SCALE_PEER_PORT || !env.BENCH_SCALE_PEER_DB) return undefined;
  const port = Number(env.BENCH_SCALE_PEER_PORT);
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'application/nostr+json' } });
  const info = (await res.json()) as { supported_nips?: number[] };
  return {
    port,
    pid: env.BENCH_SCALE_PEER_PID ? Number(env.BENCH_SCALE_PEER_PID) : undefined,
    databaseUrl: env.BENCH_SCALE_PEER_DB,
    counts: info.supported_nips?.includes(45) ?? false,
  };
}

/** A peer's storage: every table and index of its database, per line of the dataset it was loaded from. */
async function peerStorage(
  databaseUrl: string,
  json: { lines: number; bytes: number },
): Promise<Record<string, number>> {
  const peerDb = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 1 } });
  try {
    const { rows } = (await peerDb.raw(
      `SELECT coalesce(sum(pg_table_size(c.oid)), 0)::bigint AS table_bytes,
              coalesce(sum(pg_indexes_size(c.oid)), 0)::bigint AS index_bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    )) as { rows: { table_bytes: string; index_bytes: string }[] };
    const total = Number(rows[0]!.table_bytes) + Number(rows[0]!.index_bytes);
    const perLine = Math.round(total / Math.max(1, json.lines));
    const jsonPerLine = Math.round(json.bytes / Math.max(1, json.lines));
    return {
      table_bytes: Number(rows[0]!.table_bytes),
      index_bytes: Number(rows[0]!.index_bytes),
      bytes_per_line: perLine,
      ratio: Math.round((perLine / jsonPerLine) * 100) / 100,
    };
  } finally {
    await peerDb.destroy();
  }
}

export async function scenarioScale(deps: ScaleDeps): Promise<Record<string, unknown>> {
  const { log } = deps;
  const result: Record<string, unknown> = { events, keys, file };
  const json = await ensureDataset(log);

  let databaseUrl = databaseUrlOf(deps.adminUrl, deps.dbName);
  let child: ChildProcess;
  if (!reuse) {
    log('scale: admission on an empty store');
    databaseUrl = await recreateDatabase(deps.adminUrl, deps.dbName);
    child = await deps.startService(databaseUrl);
    try {
      result.admission_empty = await deps.admission(databaseUrl);
    } finally {
      await stopService(child);
    }
    log(`scale: importing ${json.lines} lines`);
    databaseUrl = await recreateDatabase(deps.adminUrl, deps.dbName);
    result.import = await importDataset(databaseUrl);
  }
  // the service's own connection settings, so that EXPLAIN shows the plan its statements get
  const { knex: db } = await openDatabase({ databaseUrl, dataDir: '', poolMax: 2 });
  try {
    if (reuse) await db.raw('SELECT 1'); // fails early when there is no such database
    // what an operator runs after a bulk load, and what autovacuum would do meanwhile; timed, not hidden
    const v0 = performance.now();
    await db.raw('VACUUM (ANALYZE) nostr_events, nostr_event_tags');
    result.vacuum_analyze_s = Math.round((performance.now() - v0) / 100) / 10;
    result.storage = await storage(db, json);
    const s = await sample(db);
    child = await deps.startService(databaseUrl);
    try {
      const reads: Record<string, unknown> = {};
      const peerReads: Record<string, unknown> = {};
      const ours: ReadTarget = { port: deps.port, pid: child.pid };
      const peer = await peerFromEnv();
      if (peer) result.peer_storage = await peerStorage(peer.databaseUrl, json);
      const probe = await openDbProbe(databaseUrl, `${deps.dbName}_wal`);
      const peerProbe = peer && (await openDbProbe(peer.databaseUrl, `${deps.dbName}_peer_wal`));
      try {
        for (const sc of readScenarios(s).filter((r) => !onlyReads || onlyReads.includes(r.name))) {
          log(`scale: reads ${sc.name}`);
          reads[sc.name] = { ...(await measureRead(ours, probe, sc)), explain: await explained(db, sc.request(0)) };
          if (!peer || !peerProbe || (sc.request(0).verb === 'COUNT' && !peer.counts)) continue;
          log(`scale: reads ${sc.name} on the peer`);
          peerReads[sc.name] = await measureRead(peer, peerProbe, sc);
        }
      } finally {
        await probe.close();
        await peerProbe?.close();
      }
      if (peer) result.peer_reads = peerReads;
      result.reads = reads;
      if (!onlyReads || onlyReads.includes('admission')) {
        log('scale: admission on the full store');
        result.admission_full = await deps.admission(databaseUrl);
      }
    } finally {
      await stopService(child);
    }
    const rate = (r: unknown) => (r as { accepted_per_s?: number }).accepted_per_s ?? 0;
    if (result.admission_empty && result.admission_full)
      result.admission_full_vs_empty =
        Math.round((rate(result.admission_full) / Math.max(1, rate(result.admission_empty))) * 100) / 100;
  } finally {
    await db.destroy();
  }
  if (env.BENCH_SCALE_KEEP !== '1' && !reuse) await dropDatabase(deps.adminUrl, deps.dbName);
  return result;
}
