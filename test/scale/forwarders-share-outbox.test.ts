// Two instances on different ports, one PostgreSQL and one Redis, both running a forwarder: events published on
// either reach the upstream relay exactly once, each outbox row is attempted once, and both forwarders take part.
import t from 'tap';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { testRedisPrefix } from '../helpers/redis.js';
import { startTestApp } from '../helpers/app.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { RawClient } from '../helpers/raw-client.js';
import { healthyRelay } from '../helpers/upstream-relays.js';
import { forwardTestEnv, waitForFinal } from '../helpers/forwarding.js';

const upstream = await healthyRelay(t, 'shared-upstream', 5);
const databaseUrl = await createTestDatabaseUrl(t);
const prefix = testRedisPrefix(t);
const env = { ...forwardTestEnv, UPSTREAM_RELAYS: upstream.url };
const a = await startTestApp(t, { databaseUrl, redis: prefix, env });
const b = await startTestApp(t, { databaseUrl, redis: prefix, env });

t.test('events published on both instances are forwarded once each, by both forwarders', async (t) => {
  const onA = await RawClient.connect(a.relayUrl);
  const onB = await RawClient.connect(b.relayUrl);
  t.teardown(() => {
    onA.close();
    onB.close();
  });
  const keys = Array.from({ length: 10 }, newKey);
  const events = Array.from({ length: 60 }, (_, i) =>
    buildEvent(keys[i % keys.length]!.sk, { content: `shared ${i}` }),
  );
  const answers = await Promise.all(events.map((ev, i) => (i % 2 ? onA : onB).publish(ev)));
  t.ok(
    answers.every(([ok]) => ok),
    'all accepted',
  );

  const rows = await waitForFinal(
    a.db.knex,
    events.map((e) => e.id),
    30_000,
  );
  t.equal(rows.length, events.length, 'one outbox row per event and target');
  t.ok(
    rows.every((r) => r.status === 'published'),
    'every row published',
  );
  t.ok(
    rows.every((r) => r.attempts === 1),
    'every row attempted exactly once',
  );
  for (const ev of events) t.equal(upstream.count(ev.id), 1, `upstream got ${ev.id.slice(0, 8)} once`);
  // which instance did how much depends on timing, so it is reported, not asserted
  const attempts = async (app: typeof a) =>
    (await app.metrics.forwardAttempts.get()).values.reduce((n, v) => n + v.value, 0);
  t.comment(`attempts made by instance A: ${await attempts(a)}, by instance B: ${await attempts(b)}`);
});
