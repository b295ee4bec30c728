// Forwarding benchmark: the built service runs in a child process (`node dist/src/index.js`) on a recreated
// PostgreSQL database, with 5 upstream relays on loopback ports served from this process. Two phases:
// - drain: BENCH_FORWARD_EVENTS events are admitted with the forwarder off, then the service is restarted with it
//   on, and the backlog is forwarded to all 5 upstreams: events/s and deliveries/s forwarded (first to last
//   upstream acceptance), not limited by admission;
// - latency: BENCH_FORWARD_LATENCY_EVENTS events published at BENCH_FORWARD_RATE events/s (default 300) with the
//   forwarder on: time from our OK to the first upstream acceptance, and to the last one (p50/p99).
// Prints ONE JSON line. Run after `npm run build`: node dist/bench/forward.js   (BENCH_PG_ADMIN_URL, BENCH_FORWARD_PORT …;
// BENCH_NODE_ARGS are passed to the service's node, e.g. --cpu-prof)
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import knexFactory from 'knex';
import { WebSocket, WebSocketServer } from 'ws';
import { generateSecretKey } from 'nostr-tools/pure';
import { finalizeEvent, setNostrWasm } from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';
import type { NostrEvent } from 'nostr-tools/pure';
import {
  dropDatabase,
  machineTicks,
  percentile,
  recreateDatabase,
  stealPercent,
  stopService,
  waitReady,
} from './common.js';

const env = process.env;
const adminUrl = env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = env.BENCH_FORWARD_DB ?? 'nostrx_bench_forward';
const port = Number(env.BENCH_FORWARD_PORT ?? 7591);
const total = Number(env.BENCH_FORWARD_EVENTS ?? 6000);
const upstreamCount = Number(env.BENCH_FORWARD_UPSTREAMS ?? 5);
const connections = Number(env.BENCH_FORWARD_CONNECTIONS ?? 4);
const inflightPerConnection = Number(env.BENCH_FORWARD_INFLIGHT ?? 64);
const latencyEvents = Number(env.BENCH_FORWARD_LATENCY_EVENTS ?? 1500);
const latencyRate = Number(env.BENCH_FORWARD_RATE ?? 300);
const maxSeconds = Number(env.BENCH_MAX_SECONDS ?? 120);

const log = (msg: string) => process.stderr.write(`bench/forward: ${msg}\n`);

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: percentile(s, 100) };
};

/** A minimal upstream relay: answers OK true to every EVENT and notes when (performance.now()). */
async function startUpstream(accepted: Map<string, number[]>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (!text.startsWith('["EVENT"')) return;
      const ev = (JSON.parse(text) as [string, { id: string }])[1];
      ws.send(`["OK","${ev.id}",true,""]`);
      let times = accepted.get(ev.id);
      if (!times) accepted.set(ev.id, (times = []));
      times.push(performance.now());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function startService(databaseUrl: string, upstreams: string[], forward: boolean): Promise<ChildProcess> {
  const nodeArgs = (env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'dist/src/index.js'], {
    env: {
      ...env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      UPSTREAM_RELAYS: upstreams.join(','),
      ALLOW_PRIVATE_RELAYS: 'true',
      POST_KINDS: '40000', // no quota in the way: this measures forwarding
      // nor the per-IP and per-connection message rates (the backlog comes from one address, faster than they allow)
      RATE_LIMIT_IP_PER_SECOND: '0',
      RATE_LIMIT_CONN_PER_SECOND: '0',
      FORWARD_ENABLED: String(forward),
      DB_POOL_MAX: env.BENCH_FORWARD_POOL ?? '20',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return waitReady(child, port);
}

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends the events at a fixed rate (round-robin over the connections), recording when each OK arrives. */
async function publishPaced(
  conns: WebSocket[],
  events: NostrEvent[],
  rate: number,
): Promise<{ okAt: Map<string, number> }> {
  const okAt = new Map<string, number>();
  let answered = 0;
  const done = new Promise<void>((resolve) => {
    for (const ws of conns) {
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as [string, string, boolean, string];
        if (m[0] !== 'OK') return;
        if (m[2]) okAt.set(m[1], performance.now());
        if (++answered === events.length) resolve();
      });
    }
  });
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  let next = 0;
  while (next < events.length && performance.now() < deadline) {
    const due = Math.min(events.length, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    for (; next < due; next++) conns[next % conns.length]!.send(`["EVENT",${JSON.stringify(events[next])}]`);
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
  for (const c of conns) c.removeAllListeners('message');
  return { okAt };
}

/** Publishes every event, at most `inflight` unanswered per connection; returns when each was answered. */
async function publishAll(
  conns: WebSocket[],
  events: NostrEvent[],
  inflightMax = inflightPerConnection,
): Promise<{ okAt: Map<string, number>; rejected: number }> {
  const okAt = new Map<string, number>();
  let rejected = 0;
  let next = 0;
  let answered = 0;
  await new Promise<void>((resolve) => {
    const inflight = new Map<WebSocket, number>();
    const pump = (ws: WebSocket) => {
      while ((inflight.get(ws) ?? 0) < inflightMax && next < events.length) {
        const ev = events[next++]!;
        inflight.set(ws, (inflight.get(ws) ?? 0) + 1);
        ws.send(`["EVENT",${JSON.stringify(ev)}]`);
      }
    };
    for (const ws of conns) {
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as [string, string, boolean, string];
        if (m[0] !== 'OK') return;
        if (m[2]) okAt.set(m[1], performance.now());
        else rejected++;
        answered++;
        inflight.set(ws, (inflight.get(ws) ?? 1) - 1);
        if (answered === events.length) {
          for (const c of conns) c.removeAllListeners('message');
          resolve();
        } else pump(ws);
      });
      pump(ws);
    }
  });
  return { okAt, rejected };
}

async function waitForDeliveries(accepted: Map<string, number[]>, events: NostrEvent[]): Promise<boolean> {
  const deadline = performance.now() + maxSeconds * 1000;
  const done = () => events.every((e) => (accepted.get(e.id)?.length ?? 0) >= upstreamCount);
  while (!done() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return done();
}

async function main(): Promise<void> {
  const machine0 = machineTicks();
  setNostrWasm(await initNostrWasm());
  const accepted = new Map<string, number[]>();
  const upstreams = await Promise.all(Array.from({ length: upstreamCount }, () => startUpstream(accepted)));
  const urls = upstreams.map((u) => u.url);
  const databaseUrl = await recreateDatabase(adminUrl, dbName);
  let service: ChildProcess | undefined;
  try {
    const keys = Array.from({ length: 50 }, () => generateSecretKey());
    const now = Math.floor(Date.now() / 1000);
    const sign = (n: number, label: string) =>
      Array.from({ length: n }, (_, i) =>
        finalizeEvent(
          { kind: 1, created_at: now - (i % 600), tags: [['t', 'bench']], content: `${label} ${i} ${Math.random()}` },
          keys[i % keys.length]!,
        ),
      );

    // Phase 1, drain: a backlog admitted with the forwarder off, forwarded after a restart with it on.
    const backlog = sign(total, 'drain');
    service = await startService(databaseUrl, urls, false);
    let conns = await Promise.all(Array.from({ length: connections }, connect));
    log(`admitting ${total} events over ${connections} connections (forwarder off)`);
    const admitStarted = performance.now();
    const admitted = await publishAll(conns, backlog);
    const admitSeconds = (performance.now() - admitStarted) / 1000;
    for (const ws of conns) ws.close();
    await stopService(service);
    log(`forwarding the backlog of ${total * upstreamCount} rows to ${upstreamCount} upstreams`);
    service = await startService(databaseUrl, urls, true);
    // what was refused (there should be nothing) is not waited for, nor counted in the rates
    const stored = backlog.filter((e) => admitted.okAt.has(e.id));
    const drained = await waitForDeliveries(accepted, stored);
    const times = stored.flatMap((e) => accepted.get(e.id) ?? []);
    const drainSeconds = (Math.max(...times) - Math.min(...times)) / 1000;
    const deliveries = stored.reduce((n, e) => n + Math.min(accepted.get(e.id)?.length ?? 0, upstreamCount), 0);

    // Phase 2, latency: a steady rate, forwarder on (its upstream connections are open by now).
    log(`publishing ${latencyEvents} events at ${latencyRate}/s`);
    conns = await Promise.all(Array.from({ length: 4 }, connect));
    const paced = sign(latencyEvents, 'latency');
    const { okAt } = await publishPaced(conns, paced, latencyRate);
    const latencyComplete = await waitForDeliveries(accepted, paced);
    for (const ws of conns) ws.close();
    const toFirst: number[] = [];
    const toAll: number[] = [];
    for (const e of paced) {
      const ok = okAt.get(e.id);
      const ts = accepted.get(e.id);
      if (ok === undefined || !ts || ts.length === 0) continue;
      toFirst.push(Math.min(...ts) - ok);
      if (ts.length >= upstreamCount) toAll.push(Math.max(...ts) - ok);
    }

    const db = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 1 } });
    const statuses = (await db('relay_publishes').select('status').count({ n: '*' }).groupBy('status')) as {
      status: string;
      n: string;
    }[];
    await db.destroy();
    const duplicates = [...backlog, ...paced].reduce(
      (n, e) => n + Math.max(0, (accepted.get(e.id)?.length ?? 0) - upstreamCount),
      0,
    );

    process.stdout.write(
      `${JSON.stringify({
        scenario: 'forward',
        upstreams: upstreamCount,
        drain: {
          events: total,
          admitted: admitted.okAt.size,
          refused: admitted.rejected,
          admitted_per_s: Math.round(admitted.okAt.size / admitSeconds),
          complete: drained,
          deliveries,
          forwarded_events_per_s: Math.round(stored.length / drainSeconds),
          forwarded_deliveries_per_s: Math.round(deliveries / drainSeconds),
        },
        latency: {
          events: latencyEvents,
          complete: latencyComplete,
          ok_to_first_upstream_ms: summary(toFirst),
          ok_to_all_upstreams_ms: summary(toAll),
        },
        duplicate_deliveries: duplicates,
        outbox: Object.fromEntries(statuses.map((s) => [s.status, Number(s.n)])),
        load_average: (await import('node:os')).loadavg().map((l) => Math.round(l * 100) / 100),
        steal_pct: stealPercent(machine0, machineTicks()),
      })}\n`,
    );
  } finally {
    if (service) await stopService(service);
    for (const u of upstreams) await u.close();
    await dropDatabase(adminUrl, dbName);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/forward failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
