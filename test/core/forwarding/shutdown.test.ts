// Graceful shutdown: forwarder.stop() (called by app.close()) stops claiming, lets attempts in flight finish for a
// bounded time, then interrupts the rest; an interrupted attempt is recorded as such, its lease is released and
// the row is due again at once, for this or another process.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { forwardTestEnv, publishRows } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { healthyRelay, silentRelay } from '../../helpers/upstream-relays.js';
import { createForwarder } from '../../../src/core/forwarding/forwarder.js';

const slow = await healthyRelay(t, 'slow', 300);
const silent = await silentRelay(t);
// The timeout is far longer than the test: an attempt to the silent relay must still be in flight when stop() is
// called, however slowly a loaded machine gets there (with 1.5 s it sometimes timed out first and was recorded as a
// retry). The grace period is then its cap, 3 s.
const app = await startTestApp(t, {
  env: { ...forwardTestEnv, FORWARD_TIMEOUT_MS: '60000', UPSTREAM_RELAYS: `${slow.url},${silent.url}` },
});
const graceMs = 3000;
const closingBoundMs = 5000;
const db = app.db.knex;

t.test('stop() finishes what answers within the grace period and hands back the rest, due at once', async (t) => {
  const judy = newKey();
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const evs = Array.from({ length: 3 }, (_, i) => buildEvent(judy.sk, { content: `bye ${i}` }));
  for (const ev of evs) t.same(await c.publish(ev), [true, '']);
  await waitFor(
    'every event in flight at both relays',
    async () => slow.received.length >= 3 && silent.received.length >= 3,
  );

  const started = Date.now();
  await app.forwarder.stop();
  const took = Date.now() - started;
  t.ok(took >= graceMs - 50, `stop() gave the silent relay its grace period (${took} ms)`);
  t.ok(
    took < graceMs + closingBoundMs,
    `stop() returned within its bound: the grace period plus the closing's (${took} ms)`,
  );

  const rows = await publishRows(
    db,
    evs.map((e) => e.id),
  );
  for (const r of rows.filter((x) => x.relay_url === slow.url)) {
    t.equal(r.status, 'published', 'an answer that came within the grace period was recorded');
  }
  const interrupted = rows.filter((x) => x.relay_url === silent.url);
  t.equal(interrupted.length, 3);
  for (const r of interrupted) {
    t.equal(r.status, 'pending');
    t.equal(r.claimed_by, null, 'the lease is released');
    t.match(r.attempt_log, [{ attempt: 1, outcome: 'interrupted', error_code: 'shutdown' }]);
  }
  const due = (
    await db.raw(`SELECT count(*) AS n FROM relay_publishes WHERE status = 'pending' AND next_attempt_at <= now()`)
  ).rows[0] as { n: string };
  t.equal(Number(due.n), 3, 'the interrupted rows are due again at once');

  // Another forwarder (another process, or this one restarted) takes them up without waiting for a lease.
  const next = createForwarder({ db, config: app.config, log: app.log, workerId: 'next-worker' });
  next.start();
  t.teardown(() => next.stop());
  const again = await waitFor('the second attempts', async () => {
    const rs = (
      await publishRows(
        db,
        evs.map((e) => e.id),
      )
    ).filter((x) => x.relay_url === silent.url);
    return rs.every((r) => r.attempts === 2 && r.claimed_by === 'next-worker') ? rs : undefined;
  });
  t.equal(again.length, 3);
});
