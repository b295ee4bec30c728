// A crash loses nothing: the forwarder runs in a child process (the whole service, on the test's database), is
// killed with SIGKILL while a batch is in flight, and a new process finishes the work. Every event reaches every
// healthy relay, every attempt is recorded exactly once (the lost ones as 'abandoned'), and every row ends published.
import t from 'tap';
import { startTestApp } from '../../helpers/app.js';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { forwardTestEnv, publishRows, startServiceProcess, waitForFinal } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { healthyRelay } from '../../helpers/upstream-relays.js';

const ownRelay = await startServiceProcess(t, {
  DATABASE_URL: await createTestDatabaseUrl(t),
  FORWARD_ENABLED: 'false',
  POST_KINDS: '40000',
});
const ownUrl = ownRelay.relayUrl.replace('//localhost:', '//127.0.0.1:');
const slow = await healthyRelay(t, 'slow', 300); // answers OK 300 ms after each EVENT
const databaseUrl = await createTestDatabaseUrl(t);
const env = {
  ...forwardTestEnv,
  UPSTREAM_RELAYS: `${slow.url},${ownUrl}`,
  FORWARD_TIMEOUT_MS: '1000',
  FORWARD_BATCH_SIZE: '10',
  FORWARD_CONCURRENCY: '10',
};
// This instance only admits events (its forwarder is off); the forwarding is done by the child processes.
const app = await startTestApp(t, { databaseUrl, env: { ...env, FORWARD_ENABLED: 'false' } });
const db = app.db.knex;

t.test(
  'the forwarder is killed with SIGKILL mid-batch; after a restart every event reaches every relay, each attempt recorded once',
  async (t) => {
    const ivan = newKey();
    const c = await RawClient.connect(app.relayUrl);
    t.teardown(() => c.close());
    const evs = Array.from({ length: 30 }, (_, i) => buildEvent(ivan.sk, { content: `crash ${i}` }));
    for (const ev of evs) t.same(await c.publish(ev), [true, '']);
    const ids = evs.map((e) => e.id);
    t.equal((await publishRows(db, ids)).length, 60, 'queued: one row per event and relay');

    const first = await startServiceProcess(t, { DATABASE_URL: databaseUrl, ...env });
    // Kill once some rows are finished (the fast relay's, recorded) while others are in flight at the slow relay:
    // a slot is free again as soon as a relay answers, so the slow relay can hold 8 before anything is recorded.
    const finishedSome = async () => (await publishRows(db, ids)).some((r) => r.status === 'published');
    await waitFor(
      'events in flight at the slow relay and some rows finished',
      async () => slow.received.length >= 8 && (await finishedSome()),
      20_000,
      5,
    );
    first.child.kill('SIGKILL');
    await first.exited;

    const held = (await publishRows(db, ids)).filter((r) => r.claimed_by === first.workerId);
    t.ok(held.length > 0, `killed in the middle of a batch: ${held.length} claimed rows were unfinished`);
    t.ok(held.every((r) => r.status === 'publishing' && r.attempts === 1));
    const doneBefore = (await publishRows(db, ids)).filter((r) => r.status === 'published').length;
    t.ok(doneBefore > 0 && doneBefore < 60, `${doneBefore} of 60 rows were finished before the kill`);

    const second = await startServiceProcess(t, { DATABASE_URL: databaseUrl, ...env });
    const rows = await waitForFinal(db, ids, 30_000);

    t.ok(
      rows.every((r) => r.status === 'published'),
      'every row ends published',
    );
    t.same(new Set(slow.received.map((r) => r.id)), new Set(ids), 'the slow relay has every event');
    const own = await RawClient.connect(ownUrl);
    t.teardown(() => own.close());
    t.equal((await own.req('all', { ids })).events.length, 30, 'our own relay (another process) has every event');

    for (const r of rows) {
      const numbers = r.attempt_log.map((e) => e.attempt);
      t.same(
        numbers,
        Array.from({ length: r.attempts }, (_, i) => i + 1),
        `row ${r.id}: attempts 1..${r.attempts}, each recorded once`,
      );
      t.equal(r.attempt_log.filter((e) => e.outcome === 'published').length, 1, 'one published attempt');
    }
    const heldIds = new Set(held.map((r) => r.id));
    for (const r of rows.filter((x) => heldIds.has(x.id))) {
      t.match(
        r.attempt_log[0],
        { attempt: 1, outcome: 'abandoned', worker: first.workerId, error_code: 'lease_expired' },
        'the lost attempt is recorded once',
      );
      t.match(
        r.attempt_log.at(-1),
        { outcome: 'published', worker: second.workerId },
        'and the new process delivered it',
      );
    }
    t.ok(
      rows.some(
        (r) =>
          heldIds.has(r.id) && Array.isArray(r.relay_response) && String(r.relay_response[3]).startsWith('duplicate:'),
      ),
      'an event the killed process had sent was sent again and answered duplicate:',
    );
  },
);
