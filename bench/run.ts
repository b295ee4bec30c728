// `npm run bench`: starts the built service in a child process on loopback (PostgreSQL database
// BENCH_DATABASE_URL, recreated; Redis at BENCH_REDIS_URL unless empty), drives it with pre-signed events over
// WebSocket connections from this process, and prints ONE JSON line with every scenario's figures. The admission
// scenarios also report what PostgreSQL did per accepted event (`db`, bench/db-probe.ts): its CPU, WAL by relation,
// commits, HOT updates and, with BENCH_COUNT_STATEMENTS=1 (bench/pg-counter.ts), statements, round trips and parses.
// Every load loop is bounded in count and in time; all traffic goes to 127.0.0.1.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { finalizeEvent, setNostrWasm, verifyEvent } from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';
import type { NostrEvent } from 'nostr-tools/pure';
import * as nip01 from '../src/nips/nip01.js';
import { prepareKeys } from './prepare.js';
import { connectTo, publishOn, type PublishResult } from './publish.js';
import type { PublishJob, PublishReport } from './publish-worker.js';
import { openDbProbe, startWireCounterThread, type DbProbe } from './db-probe.js';
import { scenarioScale } from './scale.js';
import {
  acceptedLatencyBuckets,
  dropDatabase,
  latencySummary,
  machineTicks,
  lastJsonLine,
  recreateDatabase,
  round2,
  runNode,
  serverLatencySummary,
  serviceCpuMs,
  stealPercent,
  stopService,
  waitReady,
  writeBatchSummary,
  writeBatchTotals,
} from './common.js';

const env = process.env;
const adminUrl = env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = env.BENCH_DB ?? 'nostrx_bench';
const redisUrl = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = env.BENCH_REDIS_PREFIX ?? 'nostrx_bench:';
const port = Number(env.BENCH_PORT ?? 7590);
const scenarios = (
  env.BENCH_SCENARIOS ??
  'admission,admission_new,capped,latency,latency_new,latency_capped,latency_returning,flood,flood_control,fanout,idle,forward'
).split(',');
// 1: the service's connections go through the wire counter, for statements, round trips and parses per event. Off
// by default: it adds a hop to every round trip and a thread to this process, so rates and latencies measured with
// it compare only with each other
const countStatements = env.BENCH_COUNT_STATEMENTS === '1';
// default relays the service writes outbox rows for (loopback URLs nothing listens on; the forwarder is off)
const upstreams = Number(env.BENCH_UPSTREAMS ?? 0);
/** The scenarios whose database work per accepted event is reported. */
const probed = new Set([
  'admission',
  'admission_new',
  'capped',
  'latency',
  'latency_new',
  'latency_capped',
  'latency_returning',
]);
const maxSeconds = Number(env.BENCH_MAX_SECONDS ?? 60); // per scenario, a hard stop

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function startService(databaseUrl: string, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const nodeArgs = (env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof to profile the service
  const child = spawn(process.execPath, [...nodeArgs, 'dist/src/index.js'], {
    env: {
      ...env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: redisPrefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      UPSTREAM_RELAYS: Array.from({ length: upstreams }, (_, i) => `ws://127.0.0.1:${9 + i}/`).join(','),
      ...(upstreams > 0 ? { FORWARD_ENABLED: 'false' } : {}),
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return waitReady(child, port);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

const connect = (): Promise<WebSocket> => connectTo(port);

function signEvents(keys: Uint8Array[], count: number, content: (i: number) => string, kind = 1): NostrEvent[] {
  const now = Math.floor(Date.now() / 1000);
  const out: NostrEvent[] = [];
  for (let i = 0; i < count; i++) {
    const sk = keys[i % keys.length]!;
    out.push(finalizeEvent({ kind, created_at: now - (i % 600), tags: [['t', 'bench']], content: content(i) }, sk));
  }
  return out;
}

function publishAll(
  conns: WebSocket[],
  events: NostrEvent[],
  opts: { inflight: number; ratePerSecond?: number },
): Promise<PublishResult> {
  return publishOn(conns, events, { ...opts, maxSeconds });
}

/** `job` published by bench/publish-worker.ts on a thread of its own; resolves with its report. */
async function publishOnThread(job: PublishJob): Promise<PublishReport> {
  const worker = new Worker(new URL('./publish-worker.js', import.meta.url), { workerData: job });
  try {
    return await new Promise<PublishReport>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}

/** Publishes events as fast as they are accepted (8 connections, 256 unanswered each): the saturation figures. */
async function saturate(events: NostrEvent[]): Promise<Record<string, unknown>> {
  const conns = await Promise.all(Array.from({ length: Number(env.BENCH_CONNECTIONS ?? 8) }, connect));
  const before = await writeBatchTotals(port);
  const r = await publishAll(conns, events, { inflight: Number(env.BENCH_INFLIGHT ?? 256) });
  const batches = writeBatchSummary(before, await writeBatchTotals(port));
  for (const ws of conns) ws.close();
  return {
    events: events.length,
    connections: conns.length,
    accepted: r.accepted,
    rejected: r.rejected,
    reasons: r.reasons,
    accepted_per_s: Math.round(r.accepted / r.seconds),
    ok_latency_ms: latencySummary(r.latenciesMs),
    write_batches: batches,
  };
}

async function scenarioAdmission(keys: Uint8Array[]): Promise<Record<string, unknown>> {
  const events = signEvents(keys, Number(env.BENCH_EVENTS ?? 20000), (i) => `admission ${i} ${Math.random()}`);
  return { keys: keys.length, ...(await saturate(events)) };
}

/** Fresh keys, one per event: every event is its author's first post (an account created on the basic plan). */
function firstPosts(count: number, content: string): NostrEvent[] {
  return signEvents(
    Array.from({ length: count }, () => generateSecretKey()),
    count,
    (i) => `${content} ${i} ${Math.random()}`,
  );
}

async function scenarioAdmissionNew(): Promise<Record<string, unknown>> {
  return {
    keys: 'one new author per event',
    ...(await saturate(firstPosts(Number(env.BENCH_NEW_EVENTS ?? 10000), 'first post'))),
  };
}

async function scenarioCapped(keys: Uint8Array[]): Promise<Record<string, unknown>> {
  // What most users are: on a plan with a daily limit, so every post is charged against the ledger's cap in the
  // transaction that stores it. 1,000 other keys on `premium` (25 a day), 20 posts each: all within the limit.
  const events = signEvents(keys, keys.length * 20, (i) => `capped ${i} ${Math.random()}`);
  return { keys: keys.length, plan: 'premium', ...(await saturate(events)) };
}

const steadyRate = Number(env.BENCH_STEADY_RATE ?? 300);
const steadySeconds = Number(env.BENCH_STEADY_SECONDS ?? 10);

/** `count` events for a steady scenario: first posts of new keys, or posts of `keys`. */
function steadyEvents(keys: Uint8Array[] | 'new', count: number, label: string): NostrEvent[] {
  return keys === 'new'
    ? firstPosts(count, `${label} first post`)
    : signEvents(keys, count, (i) => `${label} ${i} ${Math.random()}`);
}

/**
 * One second of a steady scenario's traffic, not measured, before its figures start (and before the database
 * probe's): the first quarter second after a process starts is answered in 100–230 ms (code compiled on first use,
 * each pooled connection's first statements), which in a 10 s scenario run first is its top 1 % by itself.
 */
async function warmUp(keys: Uint8Array[] | 'new'): Promise<void> {
  const conns = await Promise.all(Array.from({ length: 8 }, connect));
  await publishAll(conns, steadyEvents(keys, steadyRate, 'warm-up'), { inflight: 64, ratePerSecond: steadyRate });
  for (const ws of conns) ws.close();
}

async function scenarioLatency(keys: Uint8Array[] | 'new'): Promise<Record<string, unknown>> {
  const rate = steadyRate;
  const seconds = steadySeconds;
  const events = steadyEvents(keys, rate * seconds, 'steady');
  const before = await acceptedLatencyBuckets(port);
  // timed on a thread of its own, away from this process's heap and its collections
  const r = await publishOnThread({ port, events, connections: 8, inflight: 64, maxSeconds, ratePerSecond: rate });
  const serverSide = serverLatencySummary(before, await acceptedLatencyBuckets(port));
  // the in-service figure (admission histogram bucket edges) tells the service's share from the load generator's
  return {
    rate_per_s: rate,
    seconds,
    accepted: r.accepted,
    ok_latency_ms: latencySummary(r.latenciesMs),
    admission_ms_in_service: serverSide,
    // the timing thread's own event-loop delays: an answer read late is timed late, whatever the service did
    load_generator_loop_delay_ms: {
      p50: round2(r.loopDelayNs.p50 / 1e6),
      p99: round2(r.loopDelayNs.p99 / 1e6),
      max: round2(r.loopDelayNs.max / 1e6),
    },
  };
}

/**
 * What most returning authors are, for the steady scenario: 1,000 other accounts on `premium` (a daily limit, so
 * every post is charged against a cap in a transaction), each with one post admitted here, so that the service knows
 * their account and their live counters as it knows a returning author's. Run before the scenario's figures start.
 */
async function returningCappedAuthors(keys: Uint8Array[]): Promise<Uint8Array[]> {
  const conns = await Promise.all(Array.from({ length: 8 }, connect));
  await publishAll(
    conns,
    signEvents(keys, keys.length, (i) => `returning ${i} ${Math.random()}`),
    { inflight: 64 },
  );
  for (const ws of conns) ws.close();
  return keys;
}

/** The service's own migrations (`npm run migrate`), so that accounts can be made before it starts. */
async function migrate(databaseUrl: string): Promise<void> {
  await promisify(execFile)(process.execPath, ['dist/src/migrate-cli.js'], {
    env: { ...env, DATABASE_URL: databaseUrl },
  });
}

/** `count` new keys, each an account on `plan` made in the database (bench/prepare.ts). */
async function accountKeys(databaseUrl: string, count: number, plan?: string): Promise<Uint8Array[]> {
  const keys = Array.from({ length: count }, () => generateSecretKey());
  await prepareKeys(
    databaseUrl,
    keys.map((k) => getPublicKey(k)),
    plan,
  );
  return keys;
}

/** The flood's client on a thread of its own against `floodPort`, while bystanders publish to the service. */
async function floodBeside(
  floodPort: number,
  flood: NostrEvent[],
  others: NostrEvent[],
  floodRate?: number,
): Promise<{ f: PublishResult; o: PublishResult }> {
  // the bystanders are timed on a thread of their own too, as the steady scenarios are
  const [f, o] = await Promise.all([
    publishOnThread({
      port: floodPort,
      events: flood,
      connections: 4,
      inflight: 512,
      maxSeconds,
      ...(floodRate ? { ratePerSecond: floodRate } : {}),
    }),
    publishOnThread({ port, events: others, connections: 4, inflight: 64, maxSeconds, ratePerSecond: 300 }),
  ]);
  return { f, o };
}

/** bench/refuser.ts in a child process; resolves with it and its port once it listens. */
async function startRefuser(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['dist/bench/refuser.js', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const refuserPort = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bench/refuser.ts exited with ${code}`)));
  });
  return { child, port: refuserPort };
}

async function scenarioFlood(keys: Uint8Array[]): Promise<Record<string, unknown>> {
  // One basic-plan user at the limit floods; other (unlimited) users publish at a steady rate meanwhile.
  const flooder = generateSecretKey();
  const floodCount = Number(env.BENCH_FLOOD_EVENTS ?? 20000);
  const warm = signEvents([flooder], 3, (i) => `use the quota ${i}`);
  const flood = signEvents([flooder], floodCount, (i) => `flood ${i} ${Math.random()}`);
  const warmConn = await connect();
  await publishAll([warmConn], warm, { inflight: 1 });
  warmConn.close();
  const others = signEvents(keys, 300 * 10, (i) => `bystander ${i} ${Math.random()}`);
  const before = await acceptedLatencyBuckets(port);
  const { f, o } = await floodBeside(port, flood, others);
  const serverSide = serverLatencySummary(before, await acceptedLatencyBuckets(port));
  return {
    flood_events: floodCount,
    flood_rejected: f.rejected,
    flood_reasons: f.reasons,
    rejections_per_s: Math.round(f.rejected / f.seconds),
    others_accepted: o.accepted,
    others_ok_latency_ms: latencySummary(o.latenciesMs),
    // the same events timed inside the service (admission histogram bucket edges): what the service did to them
    others_admission_ms_in_service: serverSide,
  };
}

/**
 * The flood's control: the same flood, at the rate the service refused it (`rate`, when the flood scenario ran
 * before), refused by bench/refuser.ts instead of the service, beside the same bystanders publishing to the
 * service. Their latency here is what the machine alone does to them.
 */
async function scenarioFloodControl(keys: Uint8Array[], rate?: number): Promise<Record<string, unknown>> {
  const flood = signEvents(
    [generateSecretKey()],
    Number(env.BENCH_FLOOD_EVENTS ?? 20000),
    (i) => `control flood ${i} ${Math.random()}`,
  );
  const refuser = await startRefuser();
  try {
    const { f, o } = await floodBeside(
      refuser.port,
      flood,
      signEvents(keys, 300 * 10, (i) => `bystander control ${i} ${Math.random()}`),
      rate,
    );
    return {
      flood_rate_per_s: rate ?? 'unpaced',
      rejections_per_s: Math.round(f.rejected / f.seconds),
      others_accepted: o.accepted,
      others_ok_latency_ms: latencySummary(o.latenciesMs),
    };
  } finally {
    refuser.child.kill('SIGTERM');
  }
}

async function scenarioFanout(keys: Uint8Array[]): Promise<Record<string, unknown>> {
  const subscribers = Number(env.BENCH_SUBSCRIBERS ?? 100);
  const rate = Number(env.BENCH_FANOUT_RATE ?? 150);
  const seconds = Number(env.BENCH_FANOUT_SECONDS ?? 10);
  const subs = await Promise.all(Array.from({ length: subscribers }, connect));
  const sentAt = new Map<string, number>();
  const delivery: number[] = [];
  let deliveries = 0;
  await Promise.all(
    subs.map(
      (ws, i) =>
        new Promise<void>((resolve) => {
          ws.on('message', (data: Buffer) => {
            const text = data.toString();
            if (text.startsWith('["EOSE"')) return resolve();
            if (!text.startsWith('["EVENT"')) return;
            deliveries++;
            const id = /"id":"([0-9a-f]{64})"/.exec(text)?.[1];
            const t0 = id ? sentAt.get(id) : undefined;
            if (t0 !== undefined) delivery.push(performance.now() - t0);
          });
          ws.send(JSON.stringify(['REQ', `s${i}`, { kinds: [1], '#t': ['fanout'], limit: 0 }]));
        }),
    ),
  );
  log(`fanout: ${subscribers} subscribers ready`);
  // tagged so that only this scenario's events match the subscriptions
  const tagged = Array.from({ length: rate * seconds }, (_, i) =>
    finalizeEvent(
      {
        kind: 1,
        created_at: Math.floor(Date.now() / 1000),
        tags: [['t', 'fanout']],
        content: `fanout ${i} ${Math.random()}`,
      },
      keys[i % keys.length]!,
    ),
  );
  const pubs = await Promise.all(Array.from({ length: 4 }, connect));
  const started = performance.now();
  const steady = await publishAllRecording(pubs, tagged, rate, sentAt);
  await new Promise((r) => setTimeout(r, 1000));
  const steadySeconds = (performance.now() - started) / 1000;
  log(`fanout: steady phase done, ${deliveries} deliveries`);
  const steadyDeliveries = deliveries;

  // burst: how many deliveries per second the relay sustains when publishing as fast as it accepts
  deliveries = 0;
  const burstEvents = Array.from({ length: Number(env.BENCH_FANOUT_BURST ?? 3000) }, (_, i) =>
    finalizeEvent(
      {
        kind: 1,
        created_at: Math.floor(Date.now() / 1000),
        tags: [['t', 'fanout']],
        content: `burst ${i} ${Math.random()}`,
      },
      keys[i % keys.length]!,
    ),
  );
  const burstStart = performance.now();
  const expected = burstEvents.length * subscribers;
  await publishAll(pubs, burstEvents, { inflight: 256 });
  const burstDeadline = performance.now() + 30_000;
  while (deliveries < expected && performance.now() < burstDeadline) await new Promise((r) => setTimeout(r, 10));
  const burstSeconds = (performance.now() - burstStart) / 1000;
  for (const ws of [...subs, ...pubs]) ws.close();
  return {
    subscribers,
    steady_rate_per_s: rate,
    steady_accepted: steady,
    steady_deliveries: steadyDeliveries,
    steady_deliveries_per_s: Math.round(steadyDeliveries / steadySeconds),
    delivery_latency_ms: latencySummary(delivery),
    burst_events: burstEvents.length,
    burst_deliveries: deliveries,
    burst_deliveries_per_s: Math.round(deliveries / burstSeconds),
  };
}

async function publishAllRecording(
  conns: WebSocket[],
  events: NostrEvent[],
  rate: number,
  sentAt: Map<string, number>,
): Promise<number> {
  let accepted = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  for (const ws of conns) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text.startsWith('["OK"') && text.includes(',true,')) accepted++;
    });
  }
  while (next < events.length && performance.now() < deadline) {
    const due = Math.min(events.length, Math.floor(((performance.now() - started) / 1000) * rate));
    while (next < due) {
      const ev = events[next]!;
      sentAt.set(ev.id, performance.now());
      conns[next % conns.length]!.send(`["EVENT",${JSON.stringify(ev)}]`);
      next++;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  for (const ws of conns) ws.removeAllListeners('message');
  return accepted;
}

async function scenarioIdle(pid: number): Promise<Record<string, unknown>> {
  const target = Number(env.BENCH_IDLE_CONNECTIONS ?? 10000);
  const before = rssMb(pid);
  const conns: WebSocket[] = [];
  const deadline = performance.now() + maxSeconds * 1000;
  while (conns.length < target && performance.now() < deadline) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(200, target - conns.length) }, connect));
    for (const b of batch) if (b.status === 'fulfilled') conns.push(b.value);
  }
  await Promise.all(
    conns.map(
      (ws, i) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 30_000);
          ws.on('message', (d: Buffer) => {
            if (d.toString().startsWith('["EOSE"')) {
              clearTimeout(timer);
              resolve();
            }
          });
          ws.send(
            JSON.stringify(['REQ', `idle${i}`, { kinds: [1], authors: [getPublicKey(generateSecretKey())], limit: 0 }]),
          );
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMb(pid);
  for (const ws of conns) ws.terminate();
  return { connections: conns.length, rss_before_mb: before, rss_after_mb: after };
}

/** The forwarding figures come from bench/forward.ts, run as a child with its own service and upstream relays. */
async function scenarioForward(): Promise<Record<string, unknown>> {
  return lastJsonLine(await runNode(['dist/bench/forward.js'], {}, true)) as Record<string, unknown>;
}

/**
 * How fast this machine checks a signature today (µs per event, on this process's thread): nostr-wasm, as in the
 * earlier tables, and the service's own check with the native backend. The same machine has measured 2× apart on
 * different days, so figures of different runs compare only alongside it.
 */
async function verifyMicrosPerEvent(): Promise<{ wasm: number; native: number | null }> {
  const sk = generateSecretKey();
  const events = Array.from({ length: 2000 }, (_, i) =>
    finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: `calibration ${i}` }, sk),
  );
  const timed = (check: (ev: NostrEvent) => unknown): number => {
    for (const ev of events.slice(0, 200)) check({ ...ev }); // warm-up; a copy, since a checked event is marked
    const t0 = performance.now();
    for (const ev of events) check({ ...ev });
    return Math.round(((performance.now() - t0) * 1000) / events.length);
  };
  const wasm = timed(verifyEvent);
  const { backend } = await nip01.initVerifier();
  return { wasm, native: backend === 'native' ? timed((ev) => nip01.verifySignature(ev, 'native')) : null };
}

async function main(): Promise<void> {
  setNostrWasm(await initNostrWasm());
  const verifyUs = await verifyMicrosPerEvent();
  const databaseUrl = await recreateDatabase(adminUrl, dbName);
  log(`database ${dbName} recreated`);
  const wire = countStatements ? await startWireCounterThread(databaseUrl) : undefined;
  const serviceEnv = {
    RATE_LIMIT_IP_PER_SECOND: '1000000',
    RATE_LIMIT_IP_BURST: '1000000',
    RATE_LIMIT_CONN_PER_SECOND: '1000000',
    RATE_LIMIT_CONN_BURST: '1000000',
  };
  // The accounts the scenarios post as, made before the service starts, as the accounts of a production relay
  // exist before its processes start: a process reads every account key when it starts (core/accounts/known-keys.ts),
  // and an account another process made since costs its first post there one statement more.
  await migrate(databaseUrl);
  const keyCount = Number(env.BENCH_KEYS ?? 1000);
  const keys = await accountKeys(databaseUrl, keyCount); // on the unlimited `advanced`
  const made = async (name: string, count: number, plan: string): Promise<Uint8Array[]> =>
    scenarios.includes(name) ? accountKeys(databaseUrl, count, plan) : [];
  const cappedSaturated = await made('capped', keyCount, 'premium');
  const cappedReturning = await made('latency_capped', keyCount, 'premium');
  // What most posts are in production: by an account that exists but that the service has not looked up lately (its
  // cache keeps an account a minute, and most users post hours apart). One `basic` account per post of the scenario
  // and of its warm-up, never seen by the service, each with no post yet today.
  const quietKeys = await made('latency_returning', steadyRate * (1 + steadySeconds), 'basic');
  let child = await startService(wire?.url ?? databaseUrl, serviceEnv);
  let probe: DbProbe | undefined;
  const result: Record<string, unknown> = {
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    verify_us_per_event: verifyUs.wasm,
    native_verify_us_per_event: verifyUs.native,
  };
  try {
    probe = await openDbProbe(databaseUrl, `${dbName}_wal`, wire && (() => wire.snapshot()));
    for (const name of scenarios.filter((s) => s !== 'forward' && s !== 'scale')) {
      log(`scenario ${name}`);
      const cappedKeys = name === 'latency_capped' ? await returningCappedAuthors(cappedReturning) : [];
      if (name === 'latency') await warmUp(keys);
      else if (name === 'latency_returning') await warmUp(quietKeys.slice(0, steadyRate));
      else if (name === 'latency_new') await warmUp('new');
      else if (name === 'latency_capped') await warmUp(cappedKeys);
      const t0 = performance.now();
      const cpu0 = name === 'idle' ? undefined : serviceCpuMs(child.pid!);
      const machine0 = machineTicks();
      if (probed.has(name)) await probe.begin();
      if (name === 'admission') result.admission = await scenarioAdmission(keys);
      else if (name === 'admission_new') result.admission_new = await scenarioAdmissionNew();
      else if (name === 'capped') result.capped = await scenarioCapped(cappedSaturated);
      else if (name === 'latency') result.latency = await scenarioLatency(keys);
      else if (name === 'latency_new') result.latency_new = await scenarioLatency('new');
      else if (name === 'latency_capped') result.latency_capped = await scenarioLatency(cappedKeys);
      else if (name === 'latency_returning')
        result.latency_returning = await scenarioLatency(quietKeys.slice(steadyRate));
      else if (name === 'flood') result.flood = await scenarioFlood(keys);
      else if (name === 'flood_control')
        result.flood_control = await scenarioFloodControl(
          keys,
          (result.flood as { rejections_per_s?: number } | undefined)?.rejections_per_s,
        );
      else if (name === 'fanout') result.fanout = await scenarioFanout(keys);
      else if (name === 'idle') {
        // in a fresh process: what 10,000 connections cost, not what the heap grew to in the scenarios before
        result.rss_mb_before_idle_restart = rssMb(child.pid!);
        await stopService(child);
        child = await startService(wire?.url ?? databaseUrl, serviceEnv);
        result.idle = await scenarioIdle(child.pid!);
      }
      if (cpu0) {
        // the service's CPU over the scenario: less shaken by a noisy machine than the rates, so it shows what a change saves
        const cpu1 = serviceCpuMs(child.pid!);
        (result[name] as Record<string, unknown>).service_cpu_ms = {
          process: cpu1.process - cpu0.process,
          main_thread: cpu1.main - cpu0.main,
        };
      }
      // CPU time the hypervisor gave other guests meanwhile: a run with much of it is not comparable
      if (result[name]) (result[name] as Record<string, unknown>).steal_pct = stealPercent(machine0, machineTicks());
      if (probed.has(name)) {
        // the usage rows of the scenario's events are written within a second of their answers
        await new Promise((r) => setTimeout(r, 1500));
        const r = result[name] as { accepted: number } & Record<string, unknown>;
        r.db = await probe.end(r.accepted);
      }
      log(`scenario ${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    result.rss_mb = rssMb(child.pid!);
  } finally {
    await stopService(child);
    await probe?.close();
    await wire?.close();
  }
  // the forwarding scenario has its own database: this one's clean-up (autovacuum) must not run beside it
  await dropDatabase(adminUrl, dbName);
  if (scenarios.includes('forward')) {
    log('scenario forward');
    result.forward = await scenarioForward();
  }
  if (scenarios.includes('scale')) {
    log('scenario scale');
    result.scale = await scenarioScale({
      adminUrl,
      dbName: `${dbName}_scale`,
      port,
      log,
      startService: (url) => startService(url, serviceEnv),
      // accounts made while the service runs: their first posts cost it a statement more (see above), on both stores
      admission: async (url) => scenarioAdmission(await accountKeys(url, Number(env.BENCH_KEYS ?? 1000))),
    });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
