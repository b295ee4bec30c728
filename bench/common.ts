// What both benchmark scripts share: percentiles, a recreated database, waiting for the service child to be
// ready, and stopping it.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import knexFactory from 'knex';

/** Rounded to hundredths, as every figure is reported. */
export const round2 = (n: number): number => Math.round(n * 100) / 100;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return round2(sorted[i] ?? NaN);
}

/** p50/p95/p99/max of samples in any order. */
export function latencySummary(samples: number[]): { p50: number; p95: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: percentile(s, 100) };
}

/** Drops and creates `name` on the server of `adminUrl`; returns the new database's URL. */
export async function recreateDatabase(adminUrl: string, name: string): Promise<string> {
  await dropDatabase(adminUrl, name);
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  return databaseUrlOf(adminUrl, name);
}

/** The URL of database `name` on the server of `adminUrl`. */
export function databaseUrlOf(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.destroy();
}

/** Resolves once the service child answers /readyz on `port` (60 s at most; killed otherwise). */
export async function waitReady(child: ChildProcess, port: number): Promise<ChildProcess> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error('service did not become ready within 60 s');
}

/** SIGTERM, then SIGKILL after 15 s. */
export async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The service's group-commit counters read from its /metrics, to tell how many events shared a transaction. */
export async function writeBatchTotals(port: number): Promise<{ batches: number; events: number; seconds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    batches: value('nostrx_write_batch_events_count'),
    events: value('nostrx_write_batch_events_sum'),
    seconds: value('nostrx_write_batch_seconds_sum'),
  };
}

/** Mean batch size and duration between two readings of writeBatchTotals. */
export function writeBatchSummary(
  before: Awaited<ReturnType<typeof writeBatchTotals>>,
  after: Awaited<ReturnType<typeof writeBatchTotals>>,
): { batches: number; mean_events: number; mean_ms: number } {
  const batches = after.batches - before.batches;
  return {
    batches,
    mean_events: round2((after.events - before.events) / Math.max(1, batches)),
    mean_ms: round2(((after.seconds - before.seconds) * 1000) / Math.max(1, batches)),
  };
}

/** The service's own count of accepted events by admission time (histogram buckets, cumulative, le → count). */
export async function acceptedLatencyBuckets(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^nostrx_admission_seconds_bucket\{le="([^"]+)",outcome="accepted"\} (\S+)$/gm))
    out.set(m[1]!, Number(m[2]));
  return out;
}

/** Server-side p50/p99 upper bounds (bucket edges, seconds → ms) of the events accepted between two readings. */
export function serverLatencySummary(
  before: Map<string, number>,
  after: Map<string, number>,
): { p50_le_ms: number; p99_le_ms: number } {
  const rows = [...after]
    .map(([le, n]) => ({ le: le === '+Inf' ? Infinity : Number(le), n: n - (before.get(le) ?? 0) }))
    .sort((a, b) => a.le - b.le);
  const total = rows.at(-1)?.n ?? 0;
  const edge = (q: number) => round2((rows.find((r) => r.n >= q * total)?.le ?? Infinity) * 1000);
  return { p50_le_ms: edge(0.5), p99_le_ms: edge(0.99) };
}

/** The machine's CPU time so far, in clock ticks over all cores (Linux /proc/stat): all of it, and what was stolen. */
export function machineTicks(): { total: number; steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal
  return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
}

/**
 * The share of the machine's CPU time the hypervisor gave to other guests between two readings, in %: on this
 * shared machine it has been 0 in some hours and over 50 in others, and a run with much of it is not comparable.
 */
export function stealPercent(
  before: { total: number; steal: number },
  after: { total: number; steal: number },
): number {
  const total = after.total - before.total;
  return total > 0 ? Math.round(((after.steal - before.steal) / total) * 1000) / 10 : 0;
}

/**
 * CPU the service used so far, in ms (Linux /proc, clock ticks): all its processes (with WORKERS, the cluster's
 * workers beside the primary) and their main threads.
 */
export function serviceCpuMs(pid: number): { process: number; main: number } {
  const fieldsOf = (path: string): string[] => {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const ticks = (path: string) => {
    const f = fieldsOf(path);
    return Number(f[11]) + Number(f[12]); // utime + stime
  };
  const workers = readdirSync('/proc').filter((d) => {
    if (!/^\d+$/.test(d)) return false;
    try {
      return Number(fieldsOf(`/proc/${d}/stat`)[1]) === pid; // ppid
    } catch {
      return false; // gone meanwhile
    }
  });
  const tickMs = 10; // USER_HZ is 100 on Linux
  let processTicks = 0;
  let mainTicks = 0;
  for (const p of [String(pid), ...workers]) {
    processTicks += ticks(`/proc/${p}/stat`);
    mainTicks += ticks(`/proc/${p}/task/${p}/stat`);
  }
  return { process: processTicks * tickMs, main: mainTicks * tickMs };
}

/**
 * Runs `node args…` (a built script) to its end with the bench's environment and `extraEnv`; resolves with its
 * stdout. Its stderr is shown as it comes (`progress`) or kept, the last 4 kB, for the error of a non-zero exit.
 */
export function runNode(args: string[], extraEnv: Record<string, string> = {}, progress = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'pipe', progress ? 'inherit' : 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited with ${code}: ${err}`)),
    );
  });
}

/** The last line of a script's stdout, where the bench scripts and the CLIs print their one JSON summary. */
export function lastJsonLine(out: string): unknown {
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}');
}
