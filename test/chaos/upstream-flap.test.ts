// An upstream relay that flaps: it closes the connection in the middle of a send and stays down a moment, answers
// some events too slowly (past FORWARD_TIMEOUT_MS), and takes the rest; a healthy relay beside it. (Each fault
// alone is tested in test/forwarding/: breaker.test.ts, forwarding.test.ts; here they come mixed, many events at
// once.) Must hold: the breaker opens and closes again, no row is tried more than FORWARD_MAX_ATTEMPTS times,
// every attempt is in the row's record exactly once (numbered 1..attempts), and every row ends final.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { figures, scale } from '../helpers/chaos.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { forwardTestEnv, subscribeUser, waitForFinal } from '../helpers/forwarding.js';
import { RawClient } from '../helpers/raw-client.js';
import { healthyRelay, startTestRelay } from '../helpers/upstream-relays.js';
import { addOwnRelay } from '../../src/core/forwarding/relay-targets.js';

const MAX_ATTEMPTS = 6;
const app = await startTestApp(t, {
  env: {
    ...forwardTestEnv,
    FORWARD_TIMEOUT_MS: '1000',
    FORWARD_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    FORWARD_BACKOFF_BASE_MS: '100',
    FORWARD_BACKOFF_MAX_MS: '1000',
    FORWARD_CIRCUIT_FAILURES: '3',
    FORWARD_CIRCUIT_PAUSE_MS: '500',
  },
});
const db = app.db.knex;

t.test('a flapping, slow, connection-dropping relay beside a healthy one', async (t) => {
  const count = scale(30, 300);
  let flaps = true;
  const flapping = await startTestRelay(t, {
    name: 'flapping',
    // while it flaps, every 7th EVENT: the connection is closed mid-send and the relay is down 300 ms; every 5th:
    // answered after the forwarder's timeout; the others at once. Then it takes everything.
    react: (_ev, n) =>
      !flaps
        ? { ok: true, message: '' }
        : n % 7 === 3
          ? 'drop'
          : n % 5 === 1
            ? { ok: true, message: '', delayMs: 1500 }
            : { ok: true, message: '' },
    downAfterDropMs: 300,
  });
  const healthy = await healthyRelay(t, 'beside-the-flapping');
  const ivy = newKey();
  const userId = await subscribeUser(db, ivy.pk, 'premium');
  for (const url of [flapping.url, healthy.url])
    t.ok((await addOwnRelay(db, userId, { url }, { allowPrivate: true, max: 10, customRelaysAllowed: true })).ok);

  // The breaker's state is sampled while the rows are worked through: opened = a pause was seen on the relay.
  let pausesSeen = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const row = (await db('user_relays')
        .where({ user_id: userId, relay_url: flapping.url })
        .first('paused_until')) as { paused_until: Date | null };
      if (row.paused_until && row.paused_until.getTime() > Date.now()) pausesSeen++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const events = Array.from({ length: count }, (_, i) => buildEvent(ivy.sk, { content: `flap ${i}` }));
  await Promise.all(events.map((ev) => c.publish(ev)));
  const ids = events.map((e) => e.id);
  const rows = await waitForFinal(db, ids, scale(60_000, 300_000));
  sampling = false;
  await sampler;

  // It stops flapping: the next events go through once the pause is over, and the breaker closes.
  flaps = false;
  const later = Array.from({ length: 3 }, (_, i) => buildEvent(ivy.sk, { content: `steady ${i}` }));
  for (const ev of later) t.same(await c.publish(ev), [true, '']);
  const laterRows = await waitForFinal(
    db,
    later.map((e) => e.id),
    30_000,
  );

  const mine = rows.filter((r) => r.relay_url === flapping.url);
  const attempts = mine.map((r) => r.attempts);
  const relayRow = (await db('user_relays')
    .where({ user_id: userId, relay_url: flapping.url })
    .first('consecutive_failures', 'paused_until')) as {
    consecutive_failures: number;
    paused_until: Date | null;
  };
  const byStatus: Record<string, number> = {};
  for (const r of mine) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  figures(t, 'upstream-flap', {
    events: count,
    ...byStatus,
    attemptsTotal: attempts.reduce((a, b) => a + b, 0),
    attemptsMax: Math.max(...attempts),
    breakerPausesSeen: pausesSeen,
    drops: flapping.upAt.length - 1,
    sentToFlapping: flapping.received.length,
  });

  t.ok(pausesSeen > 0, 'the breaker opened (the relay was seen paused)');
  t.ok(
    laterRows.every((r) => r.status === 'published'),
    'once steady again, the relay gets the next events',
  );
  t.equal(relayRow.consecutive_failures, 0, 'and the breaker is closed (no failures counted)');
  t.ok(Math.max(...attempts) <= MAX_ATTEMPTS, `no row tried more than ${MAX_ATTEMPTS} times`);
  for (const r of mine) {
    t.same(
      r.attempt_log.map((e) => e.attempt),
      Array.from({ length: r.attempts }, (_, i) => i + 1),
      `row ${r.id}: attempts 1..${r.attempts}, each recorded once`,
    );
  }
  t.ok(
    rows.filter((r) => r.relay_url === healthy.url).every((r) => r.status === 'published'),
    'the healthy relay got every event',
  );
  t.ok(
    mine.every((r) => r.status === 'published' || r.status === 'timeout' || r.status === 'failed'),
    'every row of the flapping relay is final',
  );
});
