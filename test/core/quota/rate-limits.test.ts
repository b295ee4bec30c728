// Message rate limits: token buckets per connection (memory) and per IP (Redis, shared by processes; memory
// without Redis). Core checks against real Redis, then end to end through the relay: a flooding connection is
// answered rate-limited: while another connection is served normally. Clients are closed before their test ends:
// an app stopped with connections still open waits for the WebSocket close timeout.
import t from 'tap';
import { Redis } from 'ioredis';
import { createLogger } from '../../../src/log.js';
import { createRateLimits, type RateLimitSettings } from '../../../src/core/quota/rate-limits.js';
import { memoryTokenBuckets, redisTokenBuckets } from '../../../src/store/rate-limit-store.js';
import { testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';

const log = createLogger('silent');
const redis = new Redis(testRedisUrl);
t.teardown(() => redis.disconnect());
const prefix = testRedisPrefix(t);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closeAll(clients: RawClient[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) => new Promise((resolve) => (c.closed ? resolve(undefined) : (c.ws.once('close', resolve), c.close()))),
    ),
  );
}

const settings = (s: Partial<RateLimitSettings>): RateLimitSettings => ({
  ipPerSecond: 0,
  ipBurst: 1,
  connPerSecond: 0,
  connBurst: 1,
  ...s,
});

async function allowed(check: () => Promise<unknown>, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await check()) === undefined) ok++;
  return ok;
}

t.test('a connection gets its burst, then refills at its rate; other connections have their own bucket', async (t) => {
  const rl = createRateLimits({
    settings: settings({ connPerSecond: 5, connBurst: 3 }),
    ipBuckets: memoryTokenBuckets(),
    shared: false,
    log,
  });
  const drainStarted = performance.now();
  const first = await allowed(() => rl.check('1.1.1.1', 'c1'), 6);
  t.ok(
    first >= 3 && first <= 3 + Math.ceil(((performance.now() - drainStarted) / 1000) * 5),
    `the burst of 3 (${first} of 6, with what refilled meanwhile)`,
  );
  let refusal: unknown;
  for (let i = 0; i < 10 && refusal === undefined; i++) refusal = await rl.check('1.1.1.1', 'c1');
  t.same(refusal, {
    prefix: 'rate-limited',
    message: 'rate-limited: slow down: this connection may send 5 messages per second (bursts of 3)',
  });
  const drained = performance.now();
  t.equal(await allowed(() => rl.check('1.1.1.1', 'c2'), 3), 3, 'c2 is not slowed by c1');
  await sleep(450);
  // what comes back depends on the time that really passed since c1's bucket ran dry (a loaded machine sleeps
  // longer than asked): at least what accrued since the drain ended, at most what accrued since it began
  const before = performance.now();
  const back = await allowed(() => rl.check('1.1.1.1', 'c1'), 5);
  const after = performance.now();
  const least = Math.min(3, Math.floor(((before - drained) / 1000) * 5));
  const most = Math.min(3, Math.ceil(((after - drainStarted) / 1000) * 5));
  t.ok(
    back >= Math.max(2, least) && back <= most,
    `about 5 per second come back: ${back} after ${(before - drained).toFixed(0)} ms`,
  );
});

for (const [name, shared] of [
  ['Redis', true],
  ['memory', false],
] as const) {
  t.test(`the per-IP bucket (${name}) spans connections`, async (t) => {
    const buckets = shared ? redisTokenBuckets(redis, `${prefix}${name}:`) : memoryTokenBuckets();
    const rl = createRateLimits({
      settings: settings({ ipPerSecond: 1, ipBurst: 4 }),
      ipBuckets: buckets,
      shared,
      log,
    });
    t.equal((await allowed(() => rl.check('2.2.2.2', 'a'), 3)) + (await allowed(() => rl.check('2.2.2.2', 'b'), 3)), 4);
    t.same(await rl.checkIp('2.2.2.2'), {
      prefix: 'rate-limited',
      message: 'rate-limited: slow down: your IP address may send 1 messages per second (bursts of 4)',
    });
    t.equal(await allowed(() => rl.checkIp('3.3.3.3'), 2), 2, 'another IP is not affected');
  });
}

t.test('with Redis the per-IP limit holds across processes (two limiters, one bucket)', async (t) => {
  const p = `${prefix}shared:`;
  const one = createRateLimits({
    settings: settings({ ipPerSecond: 1, ipBurst: 10 }),
    ipBuckets: redisTokenBuckets(redis, p),
    shared: true,
    log,
  });
  const two = createRateLimits({
    settings: settings({ ipPerSecond: 1, ipBurst: 10 }),
    ipBuckets: redisTokenBuckets(redis, p),
    shared: true,
    log,
  });
  const n = (await allowed(() => one.checkIp('4.4.4.4'), 8)) + (await allowed(() => two.checkIp('4.4.4.4'), 8));
  t.equal(n, 10);
});

t.test('many messages at once from one IP share one lease instead of each draining the bucket', async (t) => {
  // burst 1000 with leases of 50: before, 100 concurrent checks took 100 leases (5000 tokens) and most were refused
  const rl = createRateLimits({
    settings: settings({ ipPerSecond: 1000, ipBurst: 1000 }),
    ipBuckets: redisTokenBuckets(redis, `${prefix}concurrent:`),
    shared: true,
    log,
  });
  const answers = await Promise.all(Array.from({ length: 100 }, () => rl.checkIp('198.51.100.7')));
  t.equal(answers.filter((a) => a === undefined).length, 100, 'all 100 allowed');
});

t.test('a busy IP takes tokens from Redis in leases, not one call per message', async (t) => {
  const p = `${prefix}lease:`;
  let calls = 0;
  const inner = redisTokenBuckets(redis, p);
  const counting = { take: (k: string, r: number, b: number, n: number) => (calls++, inner.take(k, r, b, n)) };
  const rl = createRateLimits({
    settings: settings({ ipPerSecond: 1000, ipBurst: 1000 }),
    ipBuckets: counting,
    shared: true,
    log,
  });
  t.equal(await allowed(() => rl.checkIp('5.5.5.5'), 500), 500);
  t.ok(calls <= 10, `${calls} Redis calls for 500 messages`);
});

t.test('if Redis fails, messages are let through', async (t) => {
  const down = new Redis('redis://127.0.0.1:1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  t.teardown(() => down.disconnect());
  const rl = createRateLimits({
    settings: settings({ ipPerSecond: 1, ipBurst: 1 }),
    ipBuckets: redisTokenBuckets(down, prefix),
    shared: true,
    log,
  });
  t.equal(await allowed(() => rl.checkIp('6.6.6.6'), 3), 3);
});

t.test('through the relay: a flooding connection is refused, a quiet one is served meanwhile', async (t) => {
  const app = await startTestApp(t, {
    redis: prefix,
    env: { RATE_LIMIT_CONN_PER_SECOND: '1', RATE_LIMIT_CONN_BURST: '5', RATE_LIMIT_IP_PER_SECOND: '0' },
  });
  const limit = 'rate-limited: slow down: this connection may send 1 messages per second (bursts of 5)';
  const noisy = await RawClient.connect(app.relayUrl);
  const quiet = await RawClient.connect(app.relayUrl);
  t.teardown(() => {
    noisy.close();
    quiet.close();
  });
  const key = newKey();
  const events = Array.from({ length: 40 }, (_, i) => buildEvent(key.sk, { kind: 7, content: `${i}` }));
  const flood = Promise.all(events.map((ev) => noisy.publish(ev)));
  const start = performance.now();
  const quietAnswer = await quiet.publish(buildEvent(newKey().sk, { kind: 7, content: 'quiet' }));
  const quietMs = performance.now() - start;
  const answers = await flood;
  const floodSeconds = (performance.now() - start) / 1000;
  t.same(quietAnswer, [true, ''], `the quiet connection was answered (in ${quietMs.toFixed(0)} ms)`);
  const ok = answers.filter(([a]) => a).length;
  // the burst, and one more for each second the flood really took (a loaded machine stretches it)
  t.ok(
    ok >= 5 && ok <= 5 + Math.ceil(floodSeconds),
    `${ok} of 40 accepted in ${floodSeconds.toFixed(1)} s (burst 5, 1 per second)`,
  );
  t.ok(
    answers.filter(([a]) => !a).every(([, m]) => m === limit),
    'the rest are rate-limited: with the limit',
  );
  // five more events ahead of the REQ, in the same write: they take whatever refilled since, so the REQ is over
  for (let i = 0; i < 5; i++) noisy.send(['EVENT', buildEvent(key.sk, { kind: 7, content: `more ${i}` })]);
  noisy.send(['REQ', 'x', { kinds: [7] }]);
  const closed = await noisy.next((m) => m[0] === 'CLOSED' && m[1] === 'x');
  t.equal(closed[2], limit, 'a REQ over the limit is CLOSED');
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  t.match(metrics, /nostrx_rate_limited_total\{scope="connection"\} \d+/);
  await closeAll([noisy, quiet]);
});

t.test('through the relay: the per-IP limit counts every connection of the address', async (t) => {
  const app = await startTestApp(t, {
    redis: prefix,
    env: { RATE_LIMIT_CONN_PER_SECOND: '0', RATE_LIMIT_IP_PER_SECOND: '1', RATE_LIMIT_IP_BURST: '6' },
  });
  const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(app.relayUrl)));
  t.teardown(() => clients.forEach((c) => c.close()));
  const key = newKey();
  let ok = 0;
  const start = performance.now();
  for (const c of clients)
    for (let i = 0; i < 3; i++)
      if ((await c.publish(buildEvent(key.sk, { kind: 7, content: `${ok}-${i}-${Math.random()}` })))[0]) ok++;
  const seconds = (performance.now() - start) / 1000;
  t.ok(
    ok >= 6 && ok <= 6 + Math.ceil(seconds),
    `${ok} of 9 accepted over 3 connections in ${seconds.toFixed(1)} s (burst 6, 1 per second)`,
  );
  await closeAll(clients);
});
