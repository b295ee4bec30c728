// The fan-out between processes over the machine's Redis (core/events/fanout.ts over store/pubsub.ts): the events one
// process publishes in one run of callbacks (a group commit's) cross as one Redis message, and the other process
// delivers each of them, once, in order; the publishing process delivers its own at once and ignores its echo.
import t from 'tap';
import { Redis } from 'ioredis';
import { openRedis } from '../../../src/store/redis.js';
import { redisChannel } from '../../../src/store/pubsub.js';
import { createFanOut } from '../../../src/core/events/fanout.js';
import { testRedisPrefix, testRedisUrl } from '../../helpers/redis.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { waitFor } from '../../helpers/wait-for.js';

const channel = `${testRedisPrefix(t)}events`;
const failures: unknown[] = [];
const onError = (err: unknown) => failures.push(err);
const processA = await openRedis(testRedisUrl, 'nostrx-fanout-test', onError);
const processB = await openRedis(testRedisUrl, 'nostrx-fanout-test', onError);
const observer = new Redis(testRedisUrl);
t.teardown(() => {
  processA.disconnect();
  processB.disconnect();
  observer.disconnect();
});

t.test('a commit of three events is one Redis message, and three deliveries on the other process', async (t) => {
  const a = createFanOut(redisChannel(processA, channel, onError));
  const b = createFanOut(redisChannel(processB, channel, onError));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const onA: string[] = [];
  const onB: string[] = [];
  a.subscribe(({ event }) => onA.push(event.id));
  b.subscribe(({ event, json }) => {
    t.equal(json, JSON.stringify(event), 'delivered with its JSON text');
    onB.push(event.id);
  });
  const messages: string[] = [];
  await observer.subscribe(channel);
  observer.on('message', (_channel: string, message: string) => messages.push(message));
  await waitFor(
    'three subscribers',
    async () => Number(((await processA.call('PUBSUB', 'NUMSUB', channel)) as (string | number)[])[1]) === 3,
  );

  const key = newKey();
  // a new line inside the content, which JSON escapes: it cannot split a message's lines
  const commit = [0, 1, 2].map((i) => buildEvent(key.sk, { content: `line one\nline two ${i}` }));
  for (const ev of commit) a.publish(ev);
  t.same(
    onA,
    commit.map((e) => e.id),
    'the publishing process delivers them at once',
  );

  await waitFor('three deliveries on B', () => onB.length === 3);
  t.same(
    onB,
    commit.map((e) => e.id),
    'the other process delivers each, in order',
  );
  t.equal(messages.length, 1, 'one message crossed Redis');

  const alone = buildEvent(key.sk, { content: 'later' });
  await new Promise((r) => setImmediate(r));
  a.publish(alone);
  await waitFor('the fourth delivery on B', () => onB.length === 4);
  t.equal(onB[3], alone.id, 'an event published later goes in a message of its own');
  t.equal(messages.length, 2, 'two messages in all');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(onA.length, 4, 'and the publisher never delivers its echo');
  t.same(failures, [], 'no Redis error');
});
