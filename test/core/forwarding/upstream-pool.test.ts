// The upstream pool against real WebSocket relays on loopback: one connection per relay with many events in flight,
// OKs matched by event id, reconnection after a drop, the SSRF guard at connect time and the circuit breaker.
import t from 'tap';
import pino from 'pino';
import { createUpstreamPool, type UpstreamPoolOptions } from '../../../src/core/forwarding/upstream-pool.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { healthyRelay, startTestRelay } from '../../helpers/upstream-relays.js';
import { waitFor } from '../../helpers/wait-for.js';

const base: Omit<UpstreamPoolOptions, 'trusted'> = {
  log: pino({ level: 'silent' }),
  timeoutMs: 1000,
  backoffBaseMs: 200,
  backoffMaxMs: 1000,
  circuitFailures: 2,
  circuitPauseMs: 300,
  policy: { allowPrivate: true },
};

function pool(t: { teardown(fn: () => unknown): void }, opts: Partial<UpstreamPoolOptions> = {}) {
  const p = createUpstreamPool({ ...base, trusted: new Set(), ...opts });
  t.teardown(() => p.close());
  return p;
}

t.test('many events in flight on one connection, each OK matched to its event whatever the order', async (t) => {
  // Answers the n-th event after (10 - n) · 20 ms: the last one sent is answered first.
  const relay = await startTestRelay(t, {
    name: 'reverse',
    react: (_ev, n) => ({ ok: n % 2 === 0, message: n % 2 === 0 ? '' : `blocked: odd ${n}`, delayMs: (10 - n) * 20 }),
  });
  const p = pool(t);
  const key = newKey();
  const evs = Array.from({ length: 10 }, (_, i) => buildEvent(key.sk, { content: `n${i}` }));
  const reports = await Promise.all(evs.map((ev) => p.publish(relay.url, ev)));
  t.equal(relay.connections, 1, 'one WebSocket for all of them');
  reports.forEach((r, i) => {
    t.match(r.result, { kind: 'answered', accepted: i % 2 === 0, response: ['OK', evs[i]!.id] }, `event ${i}`);
  });
  t.ok(
    reports.every((r) => r.connectionMs !== null),
    'all ten waited for the same connection',
  );
  const later = await p.publish(relay.url, buildEvent(key.sk, { content: 'later' }));
  t.equal(later.reused, true, 'and later events use it as it is');
  t.equal(later.connectionMs, 0);
  t.same(
    reports[0]?.transitions.map((x) => x.status),
    ['connecting', 'connected', 'publishing', 'answered'],
  );
  t.equal(p.openConnections(), 1);
});

t.test('a dropped connection fails the events waiting on it, and the next publish reconnects', async (t) => {
  const relay = await startTestRelay(t, {
    name: 'drop-first',
    react: (_ev, n) => (n === 0 ? 'drop' : { ok: true, message: '' }),
  });
  const p = pool(t);
  const key = newKey();
  const first = await p.publish(relay.url, buildEvent(key.sk));
  t.match(first.result, { kind: 'dropped' });
  t.type(first.publishMs, 'number', 'it was sent');
  const second = await p.publish(relay.url, buildEvent(key.sk));
  t.match(second.result, { kind: 'answered', accepted: true });
  t.equal(second.reused, false);
  t.equal(relay.connections, 2);
});

t.test('connection failures are spaced by the reconnect backoff, and shared by the publishes waiting', async (t) => {
  const down = await startTestRelay(t, { name: 'down', startDown: true });
  const p = pool(t);
  const key = newKey();
  const together = await Promise.all([1, 2, 3].map(() => p.publish(down.url, buildEvent(key.sk))));
  t.ok(together.every((r) => r.result.kind === 'connect-failed' && r.publishMs === null && r.connectionMs === null));
  const started = Date.now();
  const next = await p.publish(down.url, buildEvent(key.sk));
  t.match(next.result, { kind: 'connect-failed' });
  t.ok(Date.now() - started >= 190, 'the next connect waited for the backoff');
  await down.start();
  await new Promise((r) => setTimeout(r, 450)); // the second failure set a 400 ms delay
  t.match((await p.publish(down.url, buildEvent(key.sk))).result, { kind: 'answered', accepted: true });
});

t.test('the SSRF guard refuses a loopback relay at connect time unless it is an operator relay', async (t) => {
  const relay = await healthyRelay(t, 'loopback');
  const strict = pool(t, { policy: { allowPrivate: false } });
  const key = newKey();
  t.match((await strict.publish(relay.url, buildEvent(key.sk))).result, {
    kind: 'not-allowed',
    error: /loopback address/,
  });
  const byName = relay.url.replace('127.0.0.1', 'localhost');
  t.match((await strict.publish(byName, buildEvent(key.sk))).result, {
    kind: 'not-allowed',
    error: /localhost resolves to/,
  });
  t.equal(relay.connections, 0);
  const operator = pool(t, { policy: { allowPrivate: false }, trusted: new Set([relay.url]) });
  t.match((await operator.publish(relay.url, buildEvent(key.sk))).result, { kind: 'answered', accepted: true });
});

t.test(
  'the breaker opens after consecutive failures, half-opens after the pause, and closes on an answer',
  async (t) => {
    const p = pool(t);
    const url = 'wss://breaker.example/';
    t.same(p.breaker(url), { paused: false, halfOpen: false, until: null });
    t.equal(p.reportHealth(url, 'fail'), null);
    const until = p.reportHealth(url, 'fail');
    t.ok(until instanceof Date);
    t.match(p.breaker(url), { paused: true, halfOpen: false });
    t.same(p.pausedUrls(), [url]);
    await new Promise((r) => setTimeout(r, 320));
    t.match(p.breaker(url), { paused: false, halfOpen: true });
    t.same(p.pausedUrls(), []);
    p.reportHealth(url, 'ok');
    t.same(p.breaker(url), { paused: false, halfOpen: false, until: null });
  },
);

t.test('close() fails waiting publishes with shutdown', async (t) => {
  const silent = await startTestRelay(t, { name: 'silent', react: () => 'silent' });
  // A timeout far beyond the test's length: the publish is still waiting when close() comes, however late.
  const p = createUpstreamPool({ ...base, timeoutMs: 60_000, trusted: new Set() });
  const waiting = p.publish(silent.url, buildEvent(newKey().sk));
  await waitFor('the event at the relay', async () => silent.received.length >= 1);
  await p.close();
  t.match((await waiting).result, { kind: 'shutdown' });
  t.match((await p.publish(silent.url, buildEvent(newKey().sk))).result, { kind: 'shutdown' });
});
