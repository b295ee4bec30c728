// The forwarder's slots: FORWARD_RELAY_CONCURRENCY events at most on their way to one relay, FORWARD_CONCURRENCY
// over all relays, counted from sending to the relay's answer. Two slow relays on loopback (each answers 150 ms
// after an EVENT arrives) show how many events were unanswered at once; every outcome is still recorded.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { healthyRelay, type ReceivedEvent } from '../../helpers/upstream-relays.js';
import { forwardTestEnv, waitForFinal } from '../../helpers/forwarding.js';

const delayMs = 150;
const slowA = await healthyRelay(t, 'slow-a', delayMs);
const slowB = await healthyRelay(t, 'slow-b', delayMs);
const app = await startTestApp(t, {
  env: {
    ...forwardTestEnv,
    UPSTREAM_RELAYS: `${slowA.url},${slowB.url}`,
    FORWARD_CONCURRENCY: '3',
    FORWARD_RELAY_CONCURRENCY: '2',
  },
});

/** The most events a relay had received and not yet answered at one time (each is answered delayMs after arrival). */
function mostUnanswered(received: readonly ReceivedEvent[]): number {
  const at = received.map((r) => r.at).sort((a, b) => a - b);
  let most = 0;
  at.forEach((arrival, i) => {
    // answered before this arrival: allow 5 ms for the answer to reach the forwarder and a new send to leave
    const open = at.slice(0, i).filter((earlier) => earlier + delayMs > arrival + 5).length + 1;
    most = Math.max(most, open);
  });
  return most;
}

t.test('at most 2 events unanswered per relay, 3 over both; every outcome recorded as published', async (t) => {
  const alice = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const evs = Array.from({ length: 12 }, (_, i) => buildEvent(alice.sk, { content: `slow relay note ${i}` }));
  for (const ev of evs) t.same(await c.publish(ev), [true, '']);
  // the gauge of events on their way, read while the slow relays hold them
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    seen.push(Number(/nostrx_forward_in_flight\{stage="sending"\} (\d+)/.exec(text)?.[1] ?? -1));
    await new Promise((r) => setTimeout(r, 40));
  }
  const rows = await waitForFinal(
    app.db.knex,
    evs.map((e) => e.id),
    20_000,
  );
  t.ok(
    seen.every((n) => n >= 0 && n <= 3),
    `nostrx_forward_in_flight{stage="sending"} stayed within the 3 slots: ${seen.join(', ')}`,
  );
  t.ok(
    seen.some((n) => n > 0),
    'and showed the events on their way',
  );

  t.equal(rows.length, 24, 'one row per event and relay');
  t.ok(
    rows.every((r) => r.status === 'published' && r.attempts === 1),
    'every target published on its first attempt',
  );
  t.equal(slowA.received.length, 12);
  t.equal(slowB.received.length, 12);
  t.ok(mostUnanswered(slowA.received) <= 2, `relay A had at most ${mostUnanswered(slowA.received)} unanswered`);
  t.ok(mostUnanswered(slowB.received) <= 2, `relay B had at most ${mostUnanswered(slowB.received)} unanswered`);
  t.ok(mostUnanswered([...slowA.received, ...slowB.received]) <= 3, 'at most 3 over both relays');
  t.ok(
    mostUnanswered([...slowA.received, ...slowB.received]) >= 2,
    'and the slots were used (events went out side by side)',
  );
});
