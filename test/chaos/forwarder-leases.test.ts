// PostgreSQL "restarts" (every connection reset, new ones refused, then back: simulated through a TCP proxy, the
// machine's server is never touched) while the forwarder holds leases on rows whose events are at the upstream
// relay, answered during the outage. Must hold: every row ends published, and no event is sent twice to the relay:
// the outcomes wait in the recorder and are written once the database is back, while the leases still fence the
// rows. An outage longer than the lease (long suite) lets the rows be claimed again: they are delivered, and the
// events sent twice are counted (the relay answers `duplicate:`).
import t, { type Test } from 'tap';
import knexFactory from 'knex';
import { startTestApp } from '../helpers/app.js';
import { figures, full } from '../helpers/chaos.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { forwardTestEnv, waitForFinal } from '../helpers/forwarding.js';
import { waitFor } from '../helpers/wait-for.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTcpProxy, throughProxy } from '../helpers/tcp-proxy.js';
import { healthyRelay } from '../helpers/upstream-relays.js';

const TIMEOUT_MS = 3000; // FORWARD_TIMEOUT_MS: the lease is 2 × 3 s + 3 s = 9 s
const LEASE_MS = 9000;

async function scenario(t: Test, outageMs: number): Promise<void> {
  const databaseUrl = await createTestDatabaseUrl(t);
  const direct = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
  t.teardown(() => direct.destroy());
  const pg = new URL(databaseUrl);
  const proxy = await startTcpProxy(t, { host: pg.hostname, port: Number(pg.port || 5432) });
  // answers 1.5 s after each EVENT: the answers arrive while the database is away
  const upstream = await healthyRelay(t, 'lease-upstream', 1500);
  const app = await startTestApp(t, {
    databaseUrl: throughProxy(databaseUrl, proxy),
    env: {
      ...forwardTestEnv,
      UPSTREAM_RELAYS: upstream.url,
      FORWARD_TIMEOUT_MS: String(TIMEOUT_MS),
      FORWARD_MAX_ATTEMPTS: '10',
    },
  });
  const c = await RawClient.connect(app.relayUrl);
  t.teardown(() => c.close());
  const key = newKey();
  const events = Array.from({ length: 20 }, (_, i) => buildEvent(key.sk, { content: `leased ${i}` }));
  for (const ev of events) t.same(await c.publish(ev), [true, '']);
  const ids = events.map((e) => e.id);

  await waitFor(
    'every event to be at the upstream relay, unanswered',
    async () => upstream.received.length >= ids.length,
    15_000,
    10,
  );
  const cutAt = Date.now();
  await proxy.cut();
  await new Promise((r) => setTimeout(r, outageMs));
  await proxy.restore();
  const rows = await waitForFinal(direct, ids, 60_000);
  const doneMs = Date.now() - cutAt;

  const received = new Map<string, number>();
  for (const r of upstream.received) received.set(r.id, (received.get(r.id) ?? 0) + 1);
  const sentTwice = [...received.values()].filter((n) => n > 1).length;
  figures(t, 'forwarder-leases', {
    outageMs,
    leaseMs: LEASE_MS,
    rows: rows.length,
    published: rows.filter((r) => r.status === 'published').length,
    sentTwice,
    reclaimed: rows.filter((r) => r.attempts > 1).length,
    allFinalMsAfterCut: doneMs,
  });
  t.ok(
    rows.every((r) => r.status === 'published'),
    'every row ends published',
  );
  t.ok(
    ids.every((id) => received.has(id)),
    'the relay has every event',
  );
  if (outageMs < LEASE_MS) {
    t.equal(sentTwice, 0, 'no event was sent twice to the relay');
    t.ok(
      rows.every((r) => r.attempts === 1 && r.attempt_log.length === 1 && r.attempt_log[0]?.outcome === 'published'),
      'one attempt each, recorded once',
    );
  } else {
    t.ok(
      rows.every((r) => r.attempt_log.at(-1)?.outcome === 'published'),
      'the rows were claimed again and delivered',
    );
  }
}

t.test('a 3 s outage while the forwarder holds leases: outcomes written after it, nothing sent twice', (t) =>
  scenario(t, 3000),
);
t.test(
  'an outage longer than the lease: rows claimed again and delivered',
  { skip: full ? false : 'long: npm run chaos' },
  (t) => scenario(t, LEASE_MS + 3000),
);
