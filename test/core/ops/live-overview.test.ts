// The live overview: admissions per minute by outcome and reason, the admission p99 of the last five minutes and
// each upstream relay's success rate, latency and breaker, all computed from snapshots of the process's own
// prom-client metrics taken on an injected clock.
import t from 'tap';
import { createMetrics } from '../../../src/core/ops/metrics.js';
import { createLiveOverview } from '../../../src/core/ops/live-overview.js';
import type { BreakerState } from '../../../src/core/forwarding/upstream-pool.js';

const MINUTE = 60_000;
const start = Date.parse('2030-01-01T10:00:00Z'); // a fixed point of the fake clock, not a calendar assumption

function setup(breakers: Record<string, BreakerState> = {}) {
  const metrics = createMetrics();
  let now = start;
  let backlogQueries = 0;
  const overview = createLiveOverview({
    metrics,
    upstreamRelays: ['wss://one.example/', 'wss://TWO.example'],
    breaker: (url) => breakers[url] ?? { paused: false, halfOpen: false, until: null },
    backlog: async () => (backlogQueries++, { depth: 7, oldestSeconds: 42.4 }),
    sampleMs: 5000,
    minutes: 10,
    now: () => now,
  });
  return { metrics, overview, advance: (ms: number) => (now += ms), backlogQueries: () => backlogQueries };
}

const admit = (m: ReturnType<typeof createMetrics>, outcome: string, reason: string, n = 1, seconds = 0.001) => {
  for (let i = 0; i < n; i++) {
    m.events.inc({ outcome, reason, via: 'relay' });
    m.admissionSeconds.observe({ outcome }, seconds);
  }
};

t.test('admissions per minute, by outcome and refusal reason', async (t) => {
  const { metrics, overview, advance } = setup();
  await overview.sample();
  admit(metrics, 'accepted', '', 3);
  admit(metrics, 'rejected', 'rate-limited', 2);
  advance(5000);
  await overview.sample();
  advance(MINUTE);
  admit(metrics, 'accepted', '', 1);
  admit(metrics, 'duplicate', '', 1);
  admit(metrics, 'rejected', 'blocked', 4);

  const o = await overview.overview();
  const m = o.perMinute;
  t.equal(m.minutes.length, 10);
  t.equal(m.minutes.at(-1), Math.floor((start + 5000 + MINUTE) / MINUTE) * 60, 'the last entry is the current minute');
  t.same(m.accepted.slice(-2), [3, 1]);
  t.same(m.duplicate.slice(-2), [0, 1]);
  t.same(m.refused['rate-limited']?.slice(-2), [2, 0]);
  t.same(m.refused.blocked?.slice(-2), [0, 4]);
  t.equal(
    m.accepted.slice(0, -2).reduce((a, b) => a + b, 0),
    0,
    'earlier minutes are zero',
  );
  t.same(o.outbox, { depth: 7, oldestSeconds: 42 });
});

t.test('the p99 covers the last five minutes only', async (t) => {
  const { metrics, overview, advance } = setup();
  admit(metrics, 'accepted', '', 100, 2); // slow, and more than five minutes ago
  await overview.sample();
  advance(6 * MINUTE);
  await overview.sample();
  admit(metrics, 'accepted', '', 99, 0.0008);
  admit(metrics, 'rejected', 'invalid', 1, 0.004);
  let o = await overview.overview();
  t.same(o.admission, { p99Ms: 1, count: 100, windowSeconds: 300 }, '99 of 100 within the 1 ms bucket');
  admit(metrics, 'accepted', '', 5, 0.04);
  o = await overview.overview();
  t.equal(o.admission.p99Ms, 50, 'the 50 ms bucket once slower admissions pass 1 %');
});

t.test('no admissions: no p99', async (t) => {
  const { overview } = setup();
  await overview.sample();
  t.same((await overview.overview()).admission, { p99Ms: null, count: 0, windowSeconds: 300 });
});

t.test("each configured relay's success rate, latency and breaker; users' own relays together", async (t) => {
  const until = new Date(start + MINUTE);
  const { metrics, overview } = setup({ 'wss://two.example/': { paused: true, halfOpen: false, until } });
  await overview.sample();
  for (let i = 0; i < 3; i++) metrics.forwardAttempts.inc({ outcome: 'published', relay: 'wss://one.example/' });
  metrics.forwardAttempts.inc({ outcome: 'rejected', relay: 'wss://one.example/' });
  metrics.forwardAttempts.inc({ outcome: 'interrupted', relay: 'wss://one.example/' });
  metrics.forwardSeconds.observe({ relay: 'wss://one.example/' }, 0.01);
  metrics.forwardSeconds.observe({ relay: 'wss://one.example/' }, 0.03);
  for (let i = 0; i < 5; i++) metrics.forwardAttempts.inc({ outcome: 'retry', relay: 'wss://two.example/' });
  metrics.forwardAttempts.inc({ outcome: 'published', relay: 'custom' });

  const rows = (await overview.overview()).relays.rows;
  t.same(
    rows.map((r) => r.url),
    ['wss://one.example/', 'wss://two.example/', 'custom'],
  );
  const [one, two, custom] = rows;
  t.same(one, {
    url: 'wss://one.example/',
    attempts: { published: 3, rejected: 1, interrupted: 1 },
    successRate: 75,
    avgLatencyMs: 20,
    breaker: 'closed',
    pausedUntil: null,
  });
  t.same(two, {
    url: 'wss://two.example/',
    attempts: { retry: 5 },
    successRate: 0,
    avgLatencyMs: null,
    breaker: 'open',
    pausedUntil: until.toISOString(),
  });
  t.match(custom, { url: 'custom', successRate: 100, breaker: null });
});

t.test('the outbox backlog is counted at most once per sample interval', async (t) => {
  const { overview, advance, backlogQueries } = setup();
  await Promise.all([overview.overview(), overview.overview(), overview.overview()]);
  t.equal(backlogQueries(), 1);
  advance(4999);
  await overview.overview();
  t.equal(backlogQueries(), 1);
  advance(1);
  await overview.overview();
  t.equal(backlogQueries(), 2);
});

t.test('start samples on a timer and stop ends it', async (t) => {
  const { overview } = setup();
  overview.start();
  overview.start();
  overview.stop();
  t.pass('no timer is left running (tap would hang otherwise)');
});
