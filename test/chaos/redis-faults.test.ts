// Redis unreachable, flushed (this test's keys only: other tests share the server), restarted and half-open, all
// through a TCP proxy in front of the machine's Redis, while one author sends a burst of posts over their daily
// limit. Must hold: the limit is never exceeded (the Postgres ledger is the arbiter, the Redis counters only refuse
// early), every EVENT is answered, rate limits and the NIP-98 replay cache degrade as documented (docs/faults.md:
// per-IP limits not enforced, replays refused per process) and the service is back on Redis with no restart.
import t from 'tap';
import { Redis } from 'ioredis';
import { ApiClient } from '../helpers/api.js';
import { startTestApp } from '../helpers/app.js';
import { figures, full } from '../helpers/chaos.js';
import { defaultLimits } from '../helpers/limits.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { waitFor } from '../helpers/wait-for.js';
import { RawClient } from '../helpers/raw-client.js';
import { deletePrefix, testRedisPrefix, testRedisUrl } from '../helpers/redis.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const LIMIT = 5;
const BURST = full ? 60 : 15;
const prefix = testRedisPrefix(t);
const target = new URL(testRedisUrl);
const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port || 6379) });
const app = await startTestApp(t, {
  // Redis's own limit at its default (a half-open connection is noticed after 2 s); answers patient, as the
  // test counts exact acceptances on a machine that may be loaded
  env: {
    REDIS_TIMEOUT_MS: defaultLimits.REDIS_TIMEOUT_MS ?? '1000',
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    REDIS_PREFIX: prefix,
  },
  plans: { basic: { daily: LIMIT } },
});
const api = new ApiClient(app.url);
const direct = new Redis(testRedisUrl);
t.teardown(() => direct.disconnect());

/** Deletes every key of this test's prefix (never FLUSHALL/FLUSHDB: other tests share the server). */
const flushPrefix = () => deletePrefix(direct, prefix);

interface Burst {
  readonly accepted: number;
  readonly rateLimited: number;
  readonly errors: number;
  readonly worstMs: number;
}

/** One new author sends BURST distinct posts at once, one per connection; `during` runs once the first is answered. */
async function burst(during?: () => Promise<unknown>): Promise<Burst> {
  const key = newKey();
  const clients = await Promise.all(Array.from({ length: BURST }, () => RawClient.connect(app.relayUrl)));
  try {
    let first = true;
    const side: Promise<unknown>[] = [];
    const started = Date.now();
    const answers = await Promise.all(
      clients.map((c, i) =>
        c.publish(buildEvent(key.sk, { content: `burst ${i}` })).then((r) => {
          if (first && during) side.push(during());
          first = false;
          return { ...r, ms: Date.now() - started };
        }),
      ),
    );
    await Promise.all(side);
    return {
      accepted: answers.filter((a) => a[0]).length,
      rateLimited: answers.filter((a) => !a[0] && a[1].startsWith('rate-limited:')).length,
      errors: answers.filter((a) => !a[0] && a[1].startsWith('error:')).length,
      worstMs: Math.max(...answers.map((a) => a.ms)),
    };
  } finally {
    for (const c of clients) c.close();
  }
}

async function backOnRedis(p: TcpProxy): Promise<number> {
  const restoredAt = Date.now();
  if (p.mode !== 'pass') await p.restore();
  await waitFor(
    'the service to be connected to Redis again',
    async () => app.redis?.status === 'ready' && (await app.redis.ping()) === 'PONG',
    30_000,
  );
  return Date.now() - restoredAt;
}

/** A NIP-98 request, then the very same Authorization header again: the replay must be refused. */
async function replayCheck(): Promise<{ first: number; replay: number }> {
  const key = newKey();
  const authorization = await api.token(key, 'GET', '/v1/me');
  const first = await api.request('GET', '/v1/me', { headers: { authorization } });
  const replay = await api.request('GET', '/v1/me', { headers: { authorization } });
  return { first: first.status, replay: replay.status };
}

t.test('Redis unreachable: the ledger holds the limit, the API keeps working with replays refused here', async (t) => {
  await proxy.cut();
  const b = await burst();
  const replay = await replayCheck();
  const readiness = await (await fetch(`${app.url}/readyz`)).json();
  const recoveryMs = await backOnRedis(proxy);
  figures(t, 'redis', { fault: 'unreachable', burst: BURST, limit: LIMIT, ...b, replay, recoveryMs });
  t.equal(b.accepted, LIMIT, `exactly the limit accepted (${b.accepted} of ${BURST})`);
  t.equal(b.accepted + b.rateLimited, BURST, 'the others refused rate-limited:');
  t.same(replay, { first: 200, replay: 401 }, 'NIP-98 works, a replay to this process is refused');
  t.match(readiness, { status: 'not ready', redis: /^error/ }, '/readyz says 503 and names Redis');
});

t.test('Redis flushed while the burst is in flight: the counters are rebuilt from the ledger', async (t) => {
  let flushed = 0;
  const b = await burst(async () => (flushed = await flushPrefix()));
  figures(t, 'redis', { fault: 'flushed', burst: BURST, limit: LIMIT, ...b, flushedKeys: flushed });
  t.equal(b.accepted, LIMIT, `exactly the limit accepted (${b.accepted} of ${BURST})`);
  t.ok(flushed > 0, `${flushed} keys of this test were deleted mid-burst`);
});

t.test('Redis restarted mid-burst (connections reset, back a moment later)', async (t) => {
  let recoveryMs = 0;
  const b = await burst(async () => {
    await proxy.cut();
    await new Promise((r) => setTimeout(r, 500));
    recoveryMs = await backOnRedis(proxy);
  });
  figures(t, 'redis', { fault: 'restarted', burst: BURST, limit: LIMIT, ...b, recoveryMs });
  t.equal(b.accepted, LIMIT, `exactly the limit accepted (${b.accepted} of ${BURST})`);
});

t.test('Redis half-open (accepts, never answers): answered anyway, reconnected once it answers again', async (t) => {
  await proxy.halfOpen();
  const b = await burst();
  const replay = await replayCheck();
  const recoveryMs = await backOnRedis(proxy);
  figures(t, 'redis', { fault: 'half-open', burst: BURST, limit: LIMIT, ...b, replay, recoveryMs });
  t.equal(b.accepted, LIMIT, `exactly the limit accepted (${b.accepted} of ${BURST})`);
  t.same(replay, { first: 200, replay: 401 });
  if (full) t.ok(b.worstMs <= 5000, `every EVENT answered within 5 s (worst ${b.worstMs} ms)`);
});

t.test('after all that, the service runs on Redis again with no restart', async (t) => {
  const b = await burst();
  t.equal(b.accepted, LIMIT);
  const keys = await direct.keys(`${prefix}quota:*`);
  t.ok(keys.length > 0, 'quota counters are kept in Redis again');
  const r = await (await fetch(`${app.url}/readyz`)).json();
  t.match(r, { status: 'ready', redis: 'ok' });
});
