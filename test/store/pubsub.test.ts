// Pub/sub between processes (store/pubsub.ts) on the machine's Redis: two clients stand for two processes. Each
// channel hears the other process's messages on its own name only, never its own; the channels of one client
// share one subscriber connection, which goes away when the last channel closes.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Redis } from 'ioredis';
import { openRedis } from '../../src/store/redis.js';
import { redisChannel, type Channel } from '../../src/store/pubsub.js';
import { testRedisPrefix, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

const prefix = testRedisPrefix(t);
const name = `nostrx-pubsub-test-${randomBytes(4).toString('hex')}`;
const failures: unknown[] = [];
const onError = (err: unknown) => failures.push(err);
const processA = await openRedis(testRedisUrl, name, onError);
const processB = await openRedis(testRedisUrl, name, onError);
const observer = new Redis(testRedisUrl);
t.teardown(() => {
  processA.disconnect();
  processB.disconnect();
  observer.disconnect();
});

/** Connections to Redis that carry this test's client name. */
async function connections(): Promise<number> {
  const list = (await observer.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

function heard(channel: Channel): string[] {
  const got: string[] = [];
  channel.onMessage((text) => got.push(text));
  return got;
}

/** Subscribers Redis counts on each channel. */
async function subscribed(channels: string[]): Promise<number[]> {
  const reply = (await observer.call('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[];
  return channels.map((_, i) => Number(reply[2 * i + 1]));
}

t.test(
  'three channels per process: messages reach the other process on the same channel only, over one subscriber connection',
  async (t) => {
    const names = ['events', 'invalidate', 'bans'].map((n) => `${prefix}${n}`);
    const a = names.map((n) => redisChannel(processA, n, onError));
    const b = names.map((n) => redisChannel(processB, n, onError));
    const heardA = a.map(heard);
    const heardB = b.map(heard);
    await waitFor('both processes subscribed to every channel', async () =>
      (await subscribed(names)).every((n) => n === 2),
    );

    a[0]!.publish('event from A');
    a[1]!.publish('invalidate from A');
    b[2]!.publish('ban from B');
    b[0]!.publish('event from B');
    await waitFor(
      'each message on the other process',
      () => heardB[0]!.length === 1 && heardB[1]!.length === 1 && heardA[2]!.length === 1 && heardA[0]!.length === 1,
    );

    t.same(heardB, [['event from A'], ['invalidate from A'], []], 'process B heard A on the matching channels');
    t.same(heardA, [['event from B'], [], ['ban from B']], 'process A heard B, and never itself');
    t.equal(await connections(), 4, 'two processes: a command connection and ONE subscriber connection each');

    for (const c of a) await c.close();
    await waitFor("A's subscriber connection to close", async () => (await connections()) === 3);
    t.equal(await connections(), 3, "closing A's last channel closes its subscriber connection");
    b[1]!.publish('after A closed');
    await new Promise((r) => setTimeout(r, 100));
    t.same(heardA[1], [], 'a closed channel hears nothing');
    for (const c of b) await c.close();
    t.same(failures, []);
  },
);

t.test('closing one of two channels on a name keeps the other listening', async (t) => {
  const n = `${prefix}shared`;
  const first = redisChannel(processA, n, onError);
  const second = redisChannel(processA, n, onError);
  const sender = redisChannel(processB, n, onError);
  const heardSecond = heard(second);
  await waitFor('both subscribed', async () => (await subscribed([n]))[0] === 2);
  await first.close();
  sender.publish('still here');
  await waitFor('the second channel to hear it', () => heardSecond.length === 1);
  t.same(heardSecond, ['still here']);
  await second.close();
  await sender.close();
  t.same(failures, []);
});

t.test(
  'a start-up that holds the event loop past the command timeout: no failure reported, every channel heard',
  async (t) => {
    // a process whose client gives up on a command after 100 ms, and whose channels are made while its start-up runs
    // on (here: 400 ms of work without a pause) before the subscriber connection can be ready
    const errors: unknown[] = [];
    const slow = await openRedis(testRedisUrl, name, (err) => errors.push(err), { timeoutMs: 100 });
    t.teardown(() => slow.disconnect());
    const names = ['events', 'invalidate', 'bans'].map((n) => `${prefix}startup-${n}`);
    const channelErrors: unknown[] = [];
    const channels = names.map((n) => redisChannel(slow, n, (err) => channelErrors.push(err)));
    const heardSlow = channels.map(heard);
    const busyUntil = Date.now() + 400;
    while (Date.now() < busyUntil); // the start-up's synchronous work
    await waitFor('every channel subscribed', async () => (await subscribed(names)).every((n) => n === 1));
    const senders = names.map((n) => redisChannel(processB, n, onError));
    senders.forEach((s, i) => s.publish(`to ${i}`));
    await waitFor('each channel to hear its message', () => heardSlow.every((got) => got.length === 1));
    t.same(heardSlow, [['to 0'], ['to 1'], ['to 2']]);
    t.same(channelErrors, [], 'no SUBSCRIBE reported as failed');
    t.same(errors, []);
    for (const c of [...channels, ...senders]) await c.close();
  },
);
