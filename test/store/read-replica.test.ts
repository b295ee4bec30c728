// DATABASE_READ_URL against a real streaming replica (test/helpers/replica.ts): REQ, COUNT, reports and exports
// read from it; an event asked by id that the replica lacks yet comes from the primary; a replica that stops, or
// lags further than allowed, sends reads to the primary without failing them, /readyz stays 200 and says
// degraded, /metrics shows it, and the replica is used again once it is back. Which server ran a query is told by
// knex's 'query' events on each handle: what each pool actually sent.
import t, { type Test } from 'tap';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { Relay } from 'nostr-tools/relay';
import { replicaReads, type ReplicaState } from '../../src/store/read-replica.js';
import { queryFilter } from '../../src/store/events.js';
import { exportUserRows } from '../../src/store/user-data.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { waitFor } from '../helpers/wait-for.js';
import { startStreamingReplica } from '../helpers/replica.js';
import { storedEvents } from '../helpers/stored-events.js';

const replica = await startStreamingReplica(t);
const primaryUrl = await createTestDatabaseUrl(t, replica.primaryAdminUrl);
const database = new URL(primaryUrl).pathname.slice(1);
const admin = newKey();
const logLines: { msg: string; replica?: string; was?: string }[] = [];
const log = pino(
  { level: 'info' },
  { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) },
);
const app = await startTestApp(t, {
  databaseUrl: primaryUrl,
  log,
  plans: { basic: { daily: -1 } },
  env: {
    DATABASE_READ_URL: replica.url(database),
    DATABASE_READ_CHECK_SECONDS: '1',
    DATABASE_READ_MAX_LAG_SECONDS: '0', // the lag limit is tested on its own below: here a paused replay must not matter
    ADMIN_PUBKEYS: admin.pk,
  },
});
const replicaKnex = app.db.replica?.knex;
if (!replicaKnex) throw new Error('DATABASE_READ_URL gave the app no replica handle');

/** Event queries (REQ, COUNT) each handle sent: their FROM clause is the store's alone (knex's, or the prepared statement of one author's reads). */
const sent = { primary: [] as string[], replica: [] as string[] };
const isEventQuery = (sql: string) => sql.includes('from "nostr_events" as "e"') || sql.includes('from nostr_events e');
app.db.knex.on('query', (q: { sql: string }) => void (isEventQuery(q.sql) && sent.primary.push(q.sql)));
replicaKnex.on('query', (q: { sql: string }) => void (isEventQuery(q.sql) && sent.replica.push(q.sql)));
/** Runs `fn` and says how many event queries each server got meanwhile. */
async function servedBy<T>(fn: () => Promise<T>): Promise<{ result: T; primary: number; replica: number }> {
  const before = { primary: sent.primary.length, replica: sent.replica.length };
  const result = await fn();
  return { result, primary: sent.primary.length - before.primary, replica: sent.replica.length - before.replica };
}

async function readyz(): Promise<{
  status: number;
  body: { status: string; replica: string; replicaLagSeconds: number | null };
}> {
  const r = await fetch(`${app.url}/readyz`);
  return {
    status: r.status,
    body: (await r.json()) as { status: string; replica: string; replicaLagSeconds: number | null },
  };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const replicaInUse = () =>
  waitFor('the replica in use', async () => (await readyz()).body.replica === 'ok', 60_000, 100);
const onReplica = (id: string) => async () =>
  (await replica.sql(database, `select 1 from nostr_events where event_id = '${id}'`)).rowCount === 1;

const alice = newKey();
const relay = await Relay.connect(app.relayUrl);
t.teardown(() => relay.close());
const first = buildEvent(alice.sk, { content: 'stored before the tests' });
await relay.publish(first);
await waitFor('the replica to replay the first event', onReplica(first.id), 60_000);

t.test('REQ and COUNT read from the replica while it is in use', async (t) => {
  await replicaInUse();
  const req = await servedBy(() => storedEvents(relay, { authors: [alice.pk] }));
  t.same(
    req.result.map((e) => e.id),
    [first.id],
  );
  t.same([req.replica, req.primary], [1, 0], 'the REQ ran on the replica only');
  const count = await servedBy(() => relay.count([{ authors: [alice.pk] }], {}));
  t.equal(count.result, 1);
  t.same([count.replica, count.primary], [1, 0], 'the COUNT ran on the replica only');
  const byId = await servedBy(() => storedEvents(relay, { ids: [first.id] }));
  t.same(
    byId.result.map((e) => e.id),
    [first.id],
  );
  t.same([byId.replica, byId.primary], [1, 0], 'an id the replica holds is not asked of the primary');
  t.ok((await metric('nostrx_db_reads_total{server="replica",reason=""}')) >= 3, 'counted as replica reads');
  t.equal(await metric('nostrx_db_replica_up'), 1);
});

t.test('an event read back by id right after its OK comes from the primary while the replica lacks it', async (t) => {
  await replicaInUse();
  // Replay paused: the replica receives the new event's WAL but cannot show it, so the primary must answer.
  await replica.sql(database, 'select pg_wal_replay_pause()');
  t.teardown(() => replica.sql(database, 'select pg_wal_replay_resume()'));
  const fresh = buildEvent(alice.sk, { content: 'just published' });
  t.equal(await relay.publish(fresh), '');
  t.notOk(await onReplica(fresh.id)(), 'the replica does not have it');

  const req = await servedBy(() => storedEvents(relay, { ids: [fresh.id] }));
  t.same(
    req.result.map((e) => e.id),
    [fresh.id],
    'REQ by id finds it',
  );
  t.same([req.replica, req.primary], [1, 1], 'asked of the replica, then of the primary');
  const both = await servedBy(() => storedEvents(relay, { ids: [first.id, fresh.id] }));
  t.same(
    both.result.map((e) => e.id).sort(),
    [first.id, fresh.id].sort(),
    'fewer found than asked: the primary answers',
  );
  t.equal(both.primary, 1);
  const count = await servedBy(() => relay.count([{ ids: [fresh.id] }, { authors: [alice.pk] }], {}));
  t.equal(count.result, 2, 'COUNT naming it counts it');
  t.same([count.replica, count.primary], [1, 1]);
  const timeline = await servedBy(() => storedEvents(relay, { authors: [alice.pk] }));
  t.same(
    timeline.result.map((e) => e.id),
    [first.id],
    'a query not by id reads the replica as it stands (lag is allowed there)',
  );
  t.equal(timeline.primary, 0);
  t.ok((await metric('nostrx_db_reads_total{server="primary",reason="ids_missing"}')) >= 3);
});

t.test('reports and exports read from the replica', async (t) => {
  await replicaInUse();
  const api = new ApiClient(app.url);
  const replicaSql: string[] = [];
  const listen = (q: { sql: string }) => void replicaSql.push(q.sql);
  replicaKnex.on('query', listen);
  t.teardown(() => void replicaKnex.off('query', listen));
  const report = await api.signed(admin, 'GET', '/v1/admin/reports/engagement');
  t.equal(report.status, 200);
  t.ok(
    replicaSql.some((s) => /daily_usage_stats|usage_events/.test(s)),
    'the report ran on the replica',
  );
  const exported = await api.signed(alice, 'GET', '/v1/me/export');
  t.equal(exported.status, 200);
  t.ok(
    replicaSql.some((s) => s.includes('nostrx_export')),
    'the export ran on the replica',
  );
  t.ok(JSON.stringify(exported.body).includes(first.id), 'with what the replica holds');
});

/** A router of its own over the app's two databases, checking rarely: what a failed read does is then its doing. */
function slowChecking(t: Test, standby: Knex) {
  const served: string[] = [];
  const reads = replicaReads({
    primary: app.db.knex,
    replica: standby,
    checkMs: 600_000,
    maxLagSeconds: 0,
    onRead: (server, reason) => served.push(`${server}:${reason}`),
  });
  t.teardown(() => reads.close());
  return { reads, served };
}

t.test(
  'a stopped replica sends reads to the primary; /readyz stays 200 and says degraded; back, it is used again',
  async (t) => {
    await replicaInUse();
    const standby: Knex = knexFactory({ client: 'pg', connection: replica.url(database), pool: { min: 0, max: 2 } });
    t.teardown(() => standby.destroy());
    const one = slowChecking(t, standby);
    const two = slowChecking(t, standby);
    await waitFor(
      'the routers to find the replica',
      async () => one.reads.status()?.state === 'up' && two.reads.status()?.state === 'up',
      30_000,
    );
    const userId = ((await app.db.knex('users').where({ nostr_public_key: alice.pk }).first('id')) as { id: string })
      .id;
    const now = Math.floor(Date.now() / 1000);

    await replica.stop();
    // A read the replica fails is answered by the primary, and the replica is left alone until its next check.
    t.same(
      (await one.reads.read((db) => queryFilter(db, { ids: [first.id] }, 1, now))).map((e) => e.id),
      [first.id],
    );
    t.equal(one.reads.status()?.state, 'down');
    t.same(
      (await one.reads.read((db) => queryFilter(db, { ids: [first.id] }, 1, now))).map((e) => e.id),
      [first.id],
    );
    t.same(one.served, ['primary:replica_failed', 'primary:replica_down'], 'failed once, then not tried');
    // An export that fails before its first batch is read from the primary whole.
    const tables: string[] = [];
    for await (const batch of two.reads.stream((db) => exportUserRows(db, userId))) tables.push(batch.table);
    t.ok(tables.includes('nostr_events'), 'the export is complete');
    t.same(two.served, ['primary:replica_failed']);
    t.equal(two.reads.status()?.state, 'down');

    const during = await servedBy(() => storedEvents(relay, { authors: [alice.pk] }));
    t.ok(
      during.result.some((e) => e.id === first.id),
      'the REQ is answered (by the primary), not failed',
    );
    t.ok(during.primary >= 1, 'the primary answered it');

    const degraded = await waitFor(
      '/readyz to say degraded',
      async () => {
        const r = await readyz();
        return r.body.status === 'degraded' && r;
      },
      30_000,
    );
    t.equal(degraded.status, 200, 'still ready');
    t.match(degraded.body.replica, /^degraded: down/);
    t.equal(degraded.body.replicaLagSeconds, null);
    t.equal(await metric('nostrx_db_replica_up'), 0);
    t.ok(Number.isNaN(await metric('nostrx_db_replica_lag_seconds')), 'no lag figure while down');
    const down = await servedBy(() => relay.count([{ authors: [alice.pk] }], {}));
    t.same([down.replica, down.primary], [0, 1], 'a down replica is not tried: the primary counts');
    t.ok((await metric('nostrx_db_reads_total{server="primary",reason="replica_down"}')) >= 1);
    t.ok(
      logLines.some(
        (l) => l.msg === 'read replica out of use: reads go to the primary' && l.replica === 'down' && l.was === 'up',
      ),
      'the switch is logged',
    );

    await replica.start();
    const back = await waitFor(
      '/readyz to say ready',
      async () => {
        const r = await readyz();
        return r.body.status === 'ready' && r;
      },
      60_000,
    );
    t.equal(back.body.replica, 'ok');
    t.equal(await metric('nostrx_db_replica_up'), 1);
    const after = await servedBy(() => storedEvents(relay, { authors: [alice.pk] }));
    t.ok(after.result.some((e) => e.id === first.id));
    t.same([after.replica, after.primary], [1, 0], 'reads go to the replica again');
    t.ok(
      logLines.some((l) => l.msg === 'read replica in use' && l.was === 'down'),
      'the return is logged',
    );
  },
);

t.test('a replica further behind than allowed is left aside until it catches up', async (t) => {
  await replicaInUse();
  const primary = app.db.knex;
  const standby: Knex = knexFactory({ client: 'pg', connection: replica.url(database), pool: { min: 0, max: 2 } });
  t.teardown(() => standby.destroy());
  const states: ReplicaState[] = [];
  const served: string[] = [];
  const reads = replicaReads({
    primary,
    replica: standby,
    checkMs: 200,
    maxLagSeconds: 1,
    onChange: (s) => states.push(s.state),
    onRead: (server, reason) => served.push(`${server}:${reason}`),
  });
  t.teardown(() => reads.close());
  await waitFor('the replica in use', async () => reads.status()?.state === 'up', 30_000);
  // A transaction replayed since the replica (re)started: its replay time is what the lag is measured from.
  const before = buildEvent(alice.sk, { content: 'before the pause' });
  await relay.publish(before);
  await waitFor('the replica to replay it', onReplica(before.id), 30_000);
  await waitFor('the replica in use', async () => reads.status()?.state === 'up', 30_000);
  states.length = 0;

  await replica.sql(database, 'select pg_wal_replay_pause()');
  t.teardown(() => replica.sql(database, 'select pg_wal_replay_resume()'));
  // WAL the replica receives and does not replay: its last replayed transaction grows old
  const writes = setInterval(
    () => void relay.publish(buildEvent(alice.sk, { content: 'while paused' })).catch(() => undefined),
    300,
  );
  t.teardown(() => clearInterval(writes));
  const lagging = await waitFor(
    'the replica to be lagging',
    async () => reads.status()?.state === 'lagging' && reads.status(),
    30_000,
  );
  clearInterval(writes);
  t.ok((lagging?.lagSeconds ?? 0) > 1, `lag measured: ${lagging?.lagSeconds} s`);
  t.match(lagging?.reason, /behind, the limit is 1 s/);
  await waitFor(
    "the app's metrics to show the lag too (its limit is off)",
    async () => (await metric('nostrx_db_replica_lag_seconds')) > 1,
    10_000,
  );
  served.length = 0;
  const rows = await reads.read((db) => queryFilter(db, { authors: [alice.pk] }, 100, Math.floor(Date.now() / 1000)));
  t.ok(rows.length > 1, 'the primary answers with every event');
  t.same(served, ['primary:replica_lagging']);

  await replica.sql(database, 'select pg_wal_replay_resume()');
  await waitFor('the replica in use again', async () => reads.status()?.state === 'up', 30_000);
  t.equal(reads.status()?.lagSeconds, 0);
  t.same(states, ['lagging', 'up'], 'each change told once');
});
