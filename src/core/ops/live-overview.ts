// The operator's live overview: what this process is doing right now, computed from its own prom-client metrics
// (read as values, never as /metrics text), the forwarder's circuit breakers and the outbox backlog. A sampler
// takes a cumulative snapshot of the counters every few seconds and keeps an hour of them; the overview is the
// differences between snapshots: admissions per minute by outcome and reason, the admission p99 over the last
// five minutes, and each upstream relay's success rate and latency over the last fifteen. The figures are this
// process's own (one process of several behind a load balancer sees its share of the traffic); the outbox
// backlog is the database's, shared by all.
import type { Metrics } from './metrics.js';

/** An upstream relay's circuit breaker as the forwarder's pool reports it (forwarding depends on ops, not back). */
interface BreakerState {
  readonly paused: boolean;
  readonly halfOpen: boolean;
  readonly until: Date | null;
}
import { parseRelayUrl } from '../../nips/relay-url.js';

const MINUTE_MS = 60_000;
const P99_WINDOW_MS = 5 * MINUTE_MS;
const RELAY_WINDOW_MS = 15 * MINUTE_MS;
/** Forwarding outcomes that say nothing about the relay (our shutdown, our age limit, our SSRF guard). */
const notTheRelays = new Set(['interrupted', 'expired', 'not_forwarded']);

export interface LiveOverviewDeps {
  readonly metrics: Pick<Metrics, 'events' | 'admissionSeconds' | 'forwardAttempts' | 'forwardSeconds' | 'probes'>;
  /** The operator's UPSTREAM_RELAYS (listed even before their first attempt). */
  readonly upstreamRelays: readonly string[];
  readonly breaker: (url: string) => BreakerState;
  /** Unfinished outbox rows and the age of the oldest, over every process. */
  readonly backlog: () => Promise<{ depth: number; oldestSeconds: number }>;
  /** Time between snapshots (default 5 s). */
  readonly sampleMs?: number;
  /** Minutes of per-minute figures kept and shown (default 60). */
  readonly minutes?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

interface RelayHealth {
  readonly url: string;
  /** Attempts in the window by outcome (published, rejected, retry, failed, timeout). */
  readonly attempts: Readonly<Record<string, number>>;
  /** Percent (0–100, two decimals) of the attempts the relay is accountable for that it took; null without any. */
  readonly successRate: number | null;
  /** Mean time from sending to the relay's OK, in the window; null without an answer. */
  readonly avgLatencyMs: number | null;
  readonly breaker: 'closed' | 'open' | 'half-open' | null;
  readonly pausedUntil: string | null;
}

export interface Overview {
  readonly at: string;
  readonly sampleSeconds: number;
  readonly connections: number;
  readonly subscriptions: number;
  readonly admission: { readonly p99Ms: number | null; readonly count: number; readonly windowSeconds: number };
  readonly outbox: { readonly depth: number; readonly oldestSeconds: number };
  /** One entry per minute, oldest first; `minute` is its start (unix seconds). */
  readonly perMinute: {
    readonly minutes: number[];
    readonly accepted: number[];
    readonly duplicate: number[];
    /** Refusals by NIP-01 prefix (invalid, blocked, rate-limited …). */
    readonly refused: Readonly<Record<string, number[]>>;
  };
  readonly relays: { readonly windowSeconds: number; readonly rows: RelayHealth[] };
}

export interface LiveOverview {
  /** Takes one snapshot now (the timer calls it; tests call it with their own clock). */
  sample(): Promise<void>;
  overview(): Promise<Overview>;
  start(): void;
  stop(): void;
}

/** Cumulative figures at one instant. */
interface Snapshot {
  readonly at: number;
  /** `${outcome}|${reason}` → admissions. */
  readonly events: Map<string, number>;
  /** Cumulative count per upper bound of the admission histogram (all outcomes). */
  readonly admission: Map<number, number>;
  /** `${relay}|${outcome}` → attempts. */
  readonly attempts: Map<string, number>;
  /** relay → sum (seconds) and count of answered publishes. */
  readonly latency: Map<string, { sum: number; count: number }>;
}

const add = <K>(m: Map<K, number>, k: K, n: number) => m.set(k, (m.get(k) ?? 0) + n);
const delta = (later: number | undefined, earlier: number | undefined) => Math.max(0, (later ?? 0) - (earlier ?? 0));

async function snapshot(metrics: LiveOverviewDeps['metrics'], at: number): Promise<Snapshot> {
  const [events, admission, attempts, latency] = await Promise.all([
    metrics.events.get(),
    metrics.admissionSeconds.get(),
    metrics.forwardAttempts.get(),
    metrics.forwardSeconds.get(),
  ]);
  const s: Snapshot = { at, events: new Map(), admission: new Map(), attempts: new Map(), latency: new Map() };
  for (const v of events.values) add(s.events, `${v.labels.outcome}|${v.labels.reason ?? ''}`, v.value);
  for (const v of admission.values) {
    // prom-client adds the `le` label to bucket values; its types know only the declared labels.
    const le = (v.labels as { le?: string | number }).le;
    if (v.metricName?.endsWith('_bucket') && le !== undefined)
      add(s.admission, le === '+Inf' ? Infinity : Number(le), v.value);
  }
  for (const v of attempts.values) add(s.attempts, `${v.labels.relay}|${v.labels.outcome}`, v.value);
  for (const v of latency.values) {
    const relay = String(v.labels.relay);
    const l = s.latency.get(relay) ?? { sum: 0, count: 0 };
    if (v.metricName?.endsWith('_sum')) l.sum += v.value;
    else if (v.metricName?.endsWith('_count')) l.count += v.value;
    else continue;
    s.latency.set(relay, l);
  }
  return s;
}

/** The newest snapshot taken at least `windowMs` before `latest` (or the oldest one kept). */
function baseline(samples: readonly Snapshot[], latest: Snapshot, windowMs: number): Snapshot | undefined {
  let base: Snapshot | undefined;
  for (const s of samples) {
    if (s.at > latest.at - windowMs && base) break;
    base = s;
  }
  return base === latest ? undefined : base;
}

/** The 99th percentile's bucket bound (ms) of the admissions between two snapshots; null when none or past the last bound. */
function p99Of(from: Snapshot | undefined, to: Snapshot): { p99Ms: number | null; count: number } {
  const bounds = [...to.admission.keys()].sort((a, b) => a - b);
  const count = delta(to.admission.get(Infinity), from?.admission.get(Infinity));
  if (count === 0) return { p99Ms: null, count };
  for (const le of bounds) {
    if (delta(to.admission.get(le), from?.admission.get(le)) >= 0.99 * count) {
      return { p99Ms: Number.isFinite(le) ? Math.round(le * 1e6) / 1e3 : null, count };
    }
  }
  return { p99Ms: null, count };
}

function perMinute(samples: readonly Snapshot[], minutes: number, nowMs: number): Overview['perMinute'] {
  const last = Math.floor(nowMs / MINUTE_MS);
  const first = last - minutes + 1;
  const starts = Array.from({ length: minutes }, (_, i) => (first + i) * 60);
  const accepted = new Array<number>(minutes).fill(0);
  const duplicate = new Array<number>(minutes).fill(0);
  const refused: Record<string, number[]> = {};
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (!a || !b) continue;
    const slot = Math.floor(b.at / MINUTE_MS) - first;
    if (slot < 0 || slot >= minutes) continue;
    for (const [key, n] of b.events) {
      const d = delta(n, a.events.get(key));
      if (d === 0) continue;
      const [outcome, reason] = key.split('|') as [string, string];
      if (outcome === 'accepted') accepted[slot] = (accepted[slot] ?? 0) + d;
      else if (outcome === 'duplicate') duplicate[slot] = (duplicate[slot] ?? 0) + d;
      else {
        const series = (refused[reason || 'other'] ??= new Array<number>(minutes).fill(0));
        series[slot] = (series[slot] ?? 0) + d;
      }
    }
  }
  return { minutes: starts, accepted, duplicate, refused };
}

function relayHealth(url: string, from: Snapshot | undefined, to: Snapshot, breaker: BreakerState | null): RelayHealth {
  const attempts: Record<string, number> = {};
  for (const [key, n] of to.attempts) {
    const cut = key.lastIndexOf('|');
    if (key.slice(0, cut) !== url) continue;
    const d = delta(n, from?.attempts.get(key));
    if (d > 0) attempts[key.slice(cut + 1)] = d;
  }
  const accountable = Object.entries(attempts).reduce(
    (sum, [outcome, n]) => (notTheRelays.has(outcome) ? sum : sum + n),
    0,
  );
  const l = to.latency.get(url);
  const lFrom = from?.latency.get(url);
  const answered = delta(l?.count, lFrom?.count);
  const seconds = Math.max(0, (l?.sum ?? 0) - (lFrom?.sum ?? 0));
  return {
    url,
    attempts,
    successRate: accountable > 0 ? Math.round(((attempts.published ?? 0) / accountable) * 10_000) / 100 : null,
    avgLatencyMs: answered > 0 ? Math.round((seconds / answered) * 1e4) / 10 : null,
    breaker: breaker ? (breaker.paused ? 'open' : breaker.halfOpen ? 'half-open' : 'closed') : null,
    pausedUntil: breaker?.until && (breaker.paused || breaker.halfOpen) ? breaker.until.toISOString() : null,
  };
}

export function createLiveOverview(deps: LiveOverviewDeps): LiveOverview {
  const now = deps.now ?? Date.now;
  const sampleMs = deps.sampleMs ?? 5000;
  const minutes = deps.minutes ?? 60;
  const keepMs = minutes * MINUTE_MS + sampleMs;
  // The forwarder labels its metrics with the normalised URL of each configured relay, so the overview does too.
  const upstreams = [
    ...new Set(deps.upstreamRelays.map((u) => parseRelayUrl(u)).flatMap((p) => (p.ok ? [p.value.url] : []))),
  ];
  const samples: Snapshot[] = [];
  let timer: NodeJS.Timeout | null = null;
  // The backlog is a count over the outbox: asked at most once per sample interval, however many consoles are open.
  let backlog: { at: number; value: Promise<{ depth: number; oldestSeconds: number }> } | null = null;
  const backlogNow = (at: number) => {
    if (!backlog || at - backlog.at >= sampleMs) {
      const value = deps.backlog();
      backlog = { at, value };
      value.catch(() => (backlog = null)); // a failure is not kept: the next request asks again
    }
    return backlog.value;
  };

  async function sample(): Promise<void> {
    const s = await snapshot(deps.metrics, now());
    samples.push(s);
    while (samples.length > 2 && (samples[0]?.at ?? Infinity) < s.at - keepMs) samples.shift();
  }

  return {
    sample,
    async overview() {
      const at = now();
      const [live, outbox] = await Promise.all([snapshot(deps.metrics, at), backlogNow(at)]);
      const all = [...samples, live];
      const admission = p99Of(baseline(all, live, P99_WINDOW_MS), live);
      const relayBase = baseline(all, live, RELAY_WINDOW_MS);
      const custom = [...live.attempts.keys()].some((k) => k.startsWith('custom|')) ? ['custom'] : [];
      return {
        at: new Date(at).toISOString(),
        sampleSeconds: sampleMs / 1000,
        connections: deps.metrics.probes.connections(),
        subscriptions: deps.metrics.probes.subscriptions(),
        admission: { ...admission, windowSeconds: P99_WINDOW_MS / 1000 },
        outbox: { depth: outbox.depth, oldestSeconds: Math.round(outbox.oldestSeconds) },
        perMinute: perMinute(all, minutes, at),
        relays: {
          windowSeconds: RELAY_WINDOW_MS / 1000,
          rows: [
            ...upstreams.map((url) => relayHealth(url, relayBase, live, deps.breaker(url))),
            ...custom.map((url) => relayHealth(url, relayBase, live, null)),
          ],
        },
      };
    },
    start() {
      if (timer) return;
      // A failed snapshot only leaves a gap in the series (reading in-memory metrics does not fail in practice).
      const take = () => void sample().catch(() => undefined);
      take();
      timer = setInterval(take, sampleMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
