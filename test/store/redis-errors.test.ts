// Redis going away and coming back (store/redis.ts): the client reaches the machine's Redis through a TCP proxy on
// a loopback port (test/helpers/tcp-proxy.ts), the test cuts the proxy and brings it back. Connection errors reach our handler (the pub/sub
// connection's too) instead of ioredis' console warning, the same error is reported once while it repeats, and
// both connections work again once Redis is reachable.
import t from 'tap';
import { openRedis } from '../../src/store/redis.js';
import { redisChannel } from '../../src/store/pubsub.js';
import { testRedisPrefix, testRedisUrl } from '../helpers/redis.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

const prefix = testRedisPrefix(t);
const target = new URL(testRedisUrl);

/** A TCP proxy to the test Redis that can be cut (connections reset, port closed) and restored on the same port. */
const startProxy = (t: Teardown) => startTcpProxy(t, { host: target.hostname, port: Number(target.port || 6379) });

/** Publishes from a client that does not go through the proxy until `channel` hears it. */
async function heard(t: Teardown, name: string, listen: string[]): Promise<void> {
  const other = await openRedis(testRedisUrl, 'nostrx-errors-test-publisher', () => undefined);
  t.teardown(() => other.disconnect());
  await waitFor(`a message on ${name}`, async () => {
    await other.publish(name, 'someone-else|hello');
    return listen.includes('hello');
  });
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function client(t: Teardown, proxyPort: number, reports: { message: string; repeats: number }[] = []) {
  const redis = await openRedis(`redis://127.0.0.1:${proxyPort}`, 'nostrx-errors-test', (err, repeats) =>
    reports.push({ message: err.message, repeats }),
  );
  t.teardown(() => redis.disconnect());
  return redis;
}

t.test(
  'connection errors are reported once while they repeat, and commands work again once Redis is back',
  async (t) => {
    const proxy = await startProxy(t);
    const reports: { message: string; repeats: number }[] = [];
    const redis = await client(t, proxy.port, reports);
    await redis.set(`${prefix}k`, 'before');

    await proxy.cut();
    await waitFor('the error to reach our handler', () => reports.length >= 1);
    t.pass('the error reached our handler');
    // ioredis retries every few hundred ms, each attempt refused: over a few retries, still one report of each.
    await new Promise((r) => setTimeout(r, 1500));
    t.ok(
      reports.every((r) => /ECONNREFUSED|ECONNRESET|closed/i.test(r.message)),
      reports.map((r) => r.message).join('; '),
    );
    t.equal(
      reports.length,
      new Set(reports.map((r) => r.message)).size,
      'each distinct error reported once, its repeats counted, not logged',
    );

    await proxy.restore();
    await waitFor('the client to reconnect', () => redis.status === 'ready');
    t.equal(await redis.get(`${prefix}k`), 'before', 'commands work again');
  },
);

t.test('a channel subscribed before Redis went away hears messages once it is back', async (t) => {
  const proxy = await startProxy(t);
  const redis = await client(t, proxy.port);
  const got: string[] = [];
  const channel = redisChannel(redis, `${prefix}before`, () => undefined);
  t.teardown(() => channel.close());
  channel.onMessage((text) => got.push(text));
  await heard(t, `${prefix}before`, got);

  await proxy.cut();
  await new Promise((r) => setTimeout(r, 1000));
  await proxy.restore();
  got.length = 0;
  await heard(t, `${prefix}before`, got);
  t.pass('the subscriber connection is back, subscribed');
});

t.test('a channel opened while Redis is away hears messages once it is back, with no failure of its own', async (t) => {
  const proxy = await startProxy(t);
  const failures: unknown[] = [];
  const reports: { message: string; repeats: number }[] = [];
  const redis = await client(t, proxy.port, reports);
  await proxy.cut();
  await waitFor('the client to see Redis gone', () => redis.status !== 'ready' && reports.length > 0);
  const got: string[] = [];
  const channel = redisChannel(redis, `${prefix}during`, (err) => failures.push(err));
  t.teardown(() => channel.close());
  channel.onMessage((text) => got.push(text));
  await proxy.restore();
  await heard(t, `${prefix}during`, got);
  t.pass('subscribed once the connection was ready again');
  // its SUBSCRIBE waits for the connection to be ready: the connection's errors are the client's, reported there
  t.same(failures, []);
});
