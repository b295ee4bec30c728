// Two instances on different ports share one PostgreSQL and one Redis: a subscriber on instance B sees, live,
// what Alice publishes on instance A (Redis pub/sub), and stored events are visible from both.
import t, { type Test } from 'tap';
import { Relay } from 'nostr-tools/relay';
import type { NostrEvent } from 'nostr-tools/pure';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { testRedisPrefix } from '../helpers/redis.js';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { storedEvents } from '../helpers/stored-events.js';
import { waitFor } from '../helpers/wait-for.js';

const databaseUrl = await createTestDatabaseUrl(t);
const prefix = testRedisPrefix(t);
const a = await startTestApp(t, { databaseUrl, redis: prefix });
const b = await startTestApp(t, { databaseUrl, redis: prefix });

/** A nostr-tools Relay on each instance, closed when the test ends. */
async function clientsOfBoth(t: Test): Promise<[Relay, Relay]> {
  const clients = await Promise.all([Relay.connect(a.relayUrl), Relay.connect(b.relayUrl)]);
  t.teardown(() => clients.forEach((c) => c.close()));
  return clients;
}

t.test('a live subscriber on B receives what is published on A, once', async (t) => {
  const alice = newKey();
  const [onA, onB] = await clientsOfBoth(t);
  const received: NostrEvent[] = [];
  const eose = new Promise<void>((resolve) => {
    onB.subscribe([{ authors: [alice.pk] }], { onevent: (e) => received.push(e), oneose: resolve });
  });
  await eose;
  const ev = buildEvent(alice.sk, { content: 'from A' });
  await onA.publish(ev);
  await waitFor('the event on B', async () => received.length > 0);
  // Delivered once: a second copy (B's own echo, or A's) would come right behind the first.
  await new Promise((r) => setTimeout(r, 100));
  t.equal(received.length, 1);
  t.equal(received[0]?.id, ev.id);
});

t.test('an event stored through A is served by B, and a duplicate sent to B is recognised', async (t) => {
  const key = newKey();
  const [onA, onB] = await clientsOfBoth(t);
  const ev = buildEvent(key.sk);
  await onA.publish(ev);
  t.equal(await onB.publish(ev), 'duplicate: already have this event');
  const got = await storedEvents(onB, { ids: [ev.id] });
  t.equal(got.length, 1);
});

t.test('an event deleted through B is refused by A, which stored it, as by B', async (t) => {
  const key = newKey();
  const [onA, onB] = await clientsOfBoth(t);
  const ev = buildEvent(key.sk, { content: 'regret' });
  await onA.publish(ev);
  t.equal(await onA.publish(ev), 'duplicate: already have this event', 'A remembers it');
  await onB.publish(buildEvent(key.sk, { kind: 5, tags: [['e', ev.id]] }));
  const refusal = 'blocked: this event was deleted by its author (NIP-09)';
  await t.rejects(onB.publish(ev), new Error(refusal), 'B refuses it');
  // A hears of the deletion over Redis, a moment after B stored it.
  const answer = await waitFor('A to refuse the deleted event', async () => {
    const a = await onA.publish(ev).catch((err: Error) => err.message);
    return a === refusal ? a : undefined;
  });
  t.equal(answer, refusal, 'and so does A');
});
