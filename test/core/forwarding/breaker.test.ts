// The circuit breaker: after FORWARD_CIRCUIT_FAILURES consecutive failures an upstream relay is paused for
// FORWARD_CIRCUIT_PAUSE_MS (its due rows are not attempted), then one probe attempt is let through; the other relays
// are served all along. Asserted from the recorded attempt times.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { forwardTestEnv, publishRows, subscribeUser, type LogEntry } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { downThenUpRelay, healthyRelay } from '../../helpers/upstream-relays.js';
import { addOwnRelay } from '../../../src/core/forwarding/relay-targets.js';

// Long enough that the healthy relay's deliveries of the events sent during it finish well inside it on a loaded
// machine; the assertions compare recorded times, not the clock of this test.
const PAUSE = 1500;
const app = await startTestApp(t, {
  env: {
    ...forwardTestEnv,
    FORWARD_CIRCUIT_FAILURES: '2',
    FORWARD_CIRCUIT_PAUSE_MS: String(PAUSE),
    FORWARD_BACKOFF_BASE_MS: '50',
    FORWARD_MAX_ATTEMPTS: '20',
  },
});
const db = app.db.knex;
const ms = (iso: string | undefined) => new Date(iso ?? NaN).getTime();

t.test(
  'Heidi: a relay that keeps failing is paused, probed once after the pause, and never holds back the healthy one',
  async (t) => {
    const heidi = newKey();
    const userId = await subscribeUser(db, heidi.pk, 'premium');
    const down = await downThenUpRelay(t, 'always-down');
    const healthy = await healthyRelay(t, 'heidi-healthy');
    for (const url of [down.url, healthy.url])
      t.ok((await addOwnRelay(db, userId, { url }, { allowPrivate: true, max: 10, customRelaysAllowed: true })).ok);
    const c = await RawClient.connect(app.relayUrl);
    t.teardown(() => c.close());
    const first = Array.from({ length: 3 }, (_, i) => buildEvent(heidi.sk, { content: `first ${i}` }));
    for (const ev of first) t.same(await c.publish(ev), [true, '']);
    const opened = await waitFor('the breaker to open', async () => {
      const rows = (
        await publishRows(
          db,
          first.map((e) => e.id),
        )
      ).filter((r) => r.relay_url === down.url);
      const failures = rows.flatMap((r) => r.attempt_log).sort((a, b) => ms(a.finished_at) - ms(b.finished_at));
      return failures.length >= 2 ? ms(failures[1]?.finished_at) : undefined;
    });

    // While it is paused, new events still reach the healthy relay at once.
    const during = Array.from({ length: 3 }, (_, i) => buildEvent(heidi.sk, { content: `during ${i}` }));
    for (const ev of during) t.same(await c.publish(ev), [true, '']);
    const all = [...first, ...during].map((e) => e.id);

    const attempts = await waitFor(
      'two attempts after the pause',
      async () => {
        const rows = (await publishRows(db, all)).filter((r) => r.relay_url === down.url);
        const log = rows.flatMap((r) => r.attempt_log).sort((a, b) => ms(a.started_at) - ms(b.started_at));
        // strictly after: an attempt dispatched in the same millisecond as the failure that opened the breaker began
        // before the breaker knew, like `after` below counts it
        return log.filter((e) => ms(e.started_at) > opened).length >= 2 ? log : undefined;
      },
      15_000,
    );
    const healthyRows = (await publishRows(db, all)).filter((r) => r.relay_url === healthy.url);
    t.ok(
      healthyRows.every((r) => r.status === 'published' && r.attempts === 1),
      'every event reached the healthy relay on the first attempt',
    );
    const healthyDone = Math.max(...healthyRows.map((r) => ms(r.attempt_log[0]?.finished_at)));
    const after = attempts.filter((e) => ms(e.started_at) > opened);
    const probe = after[0] as LogEntry;
    // Not held back: the healthy relay had every event before the paused one was tried again.
    t.ok(
      healthyDone < ms(probe.started_at),
      `all of them while the failing relay was paused (${healthyDone - opened} ms after it opened)`,
    );

    t.ok(
      ms(probe.started_at) >= opened + PAUSE - 50,
      `no attempt during the pause (next one ${ms(probe.started_at) - opened} ms after it opened)`,
    );
    const next = after[1] as LogEntry;
    t.ok(ms(next.started_at) >= ms(probe.finished_at), 'the probe ran alone');
    t.ok(ms(next.started_at) >= ms(probe.finished_at) + PAUSE - 50, 'the failed probe paused the relay again');

    const row = (await db('user_relays')
      .where({ user_id: userId, relay_url: down.url })
      .first('consecutive_failures', 'paused_until', 'last_publish_failure')) as Record<string, unknown>;
    t.ok(Number(row.consecutive_failures) >= 3);
    t.ok(row.paused_until instanceof Date, 'the pause is visible on the user relay');
    t.ok(row.last_publish_failure);
  },
);
