// The operator console's own admin routes: GET /v1/admin/overview (this process's live figures, from its metrics,
// the breakers and the outbox) and GET /v1/admin/audit (the audit trail filtered by actor, table and user, paged).
// NIP-98 by an admin only; a session token is not enough, and a non-admin gets 403.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { blockingRelay, downThenUpRelay, healthyRelay } from '../helpers/upstream-relays.js';
import { waitFor } from '../helpers/wait-for.js';

const admin = newKey();
const healthy = await healthyRelay(t);
const blocking = await blockingRelay(t);
const down = await downThenUpRelay(t);
const app = await startTestApp(t, {
  env: {
    ADMIN_PUBKEYS: admin.pk,
    UPSTREAM_RELAYS: [healthy.url, blocking.url, down.url].join(','),
    FORWARD_TIMEOUT_MS: '1000',
    FORWARD_BACKOFF_BASE_MS: '600000',
    FORWARD_CIRCUIT_FAILURES: '1',
    FORWARD_CIRCUIT_PAUSE_MS: '600000',
  },
});
const api = new ApiClient(app.url);

async function idOf(key: Key): Promise<string> {
  const r = await api.signed(key, 'GET', '/v1/me');
  return r.body.id as string;
}

t.test('only an admin, signing with NIP-98, reads the console routes', async (t) => {
  const mallory = newKey();
  for (const path of ['/v1/admin/overview', '/v1/admin/audit']) {
    const r = await api.signed(mallory, 'GET', path);
    t.same([r.status, r.body.error.code], [403, 'not_admin'], path);
    const token = await api.session(admin);
    const s = await api.bearer(token, 'GET', path);
    t.equal(s.status, 401, `${path}: a session token is not enough`);
  }
});

t.test('GET /v1/me says who is an admin', async (t) => {
  t.equal((await api.signed(admin, 'GET', '/v1/me')).body.admin, true);
  t.equal((await api.signed(newKey(), 'GET', '/v1/me')).body.admin, false);
});

t.test('the overview counts what this process admitted and how the upstream relays did', async (t) => {
  const alice = newKey();
  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  const note = buildEvent(alice.sk, { content: 'counted' });
  await relay.publish(note);
  await t.rejects(relay.publish({ ...buildEvent(alice.sk), sig: '0'.repeat(128) }), /invalid/);

  // Until each relay's first attempt is recorded (the down one opens its breaker: one failure is enough here) and
  // the backlog, counted at most once per 5 s, is down to the down relay's row.
  await waitFor(
    'an attempt at every relay',
    async () => {
      const r = await api.signed(admin, 'GET', '/v1/admin/overview');
      return (
        r.body.outbox.depth === 1 &&
        r.body.relays.rows.every((row: { attempts: Record<string, number> }) => Object.keys(row.attempts).length > 0)
      );
    },
    20_000,
  );
  const r = await api.signed(admin, 'GET', '/v1/admin/overview');
  t.equal(r.status, 200);
  const o = r.body;
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  t.equal(sum(o.per_minute.accepted), 1);
  t.equal(sum(o.per_minute.refused.invalid), 1);
  t.equal(o.per_minute.minutes.length, 60);
  t.ok(o.connections >= 1, 'the open relay connection');
  t.match(o.admission, { count: 2, window_seconds: 300 });
  t.type(o.admission.p99_ms, 'number');
  t.match(o.outbox, { depth: 1 }, "the down relay's row is pending");
  const row = (url: string) => o.relays.rows.find((x: { url: string }) => x.url === url);
  t.match(row(healthy.url), { success_rate: 100, breaker: 'closed', attempts: { published: 1 } });
  t.type(row(healthy.url).avg_latency_ms, 'number');
  t.match(row(blocking.url), { success_rate: 0, breaker: 'closed', attempts: { rejected: 1 } });
  t.match(row(down.url), { success_rate: 0, breaker: 'open', attempts: { retry: 1 }, avg_latency_ms: null });
  t.ok(Date.parse(row(down.url).paused_until) > Date.now(), 'paused until a time to come');
});

t.test('the audit trail, newest first, filtered by actor, table and user, a page at a time', async (t) => {
  const bob = newKey();
  const carol = newKey();
  const bobId = await idOf(bob);
  const carolId = await idOf(carol);
  const put = (id: string, status: string) =>
    api.signed(admin, 'PUT', `/v1/admin/users/${id}/status`, { body: { status } });
  t.equal((await put(bobId, 'suspended')).status, 200);
  t.equal((await put(bobId, 'active')).status, 200);
  t.equal((await put(carolId, 'suspended')).status, 200);
  const rpc = await api.signed(admin, 'POST', '/', {
    body: { method: 'banpubkey', params: [carol.pk, 'spam'] },
    contentType: 'application/nostr+json+rpc',
  });
  t.equal(rpc.status, 200);

  let r = await api.signed(admin, 'GET', `/v1/admin/audit?user_id=${bobId}`);
  t.equal(r.status, 200);
  t.same(
    r.body.entries.map((e: { new_values: { status: string } }) => e.new_values.status),
    ['active', 'suspended'],
    "bob's changes, newest first",
  );
  t.match(r.body.entries[0], {
    table: 'users',
    operation: 'UPDATE',
    user_id: bobId,
    actor: admin.pk,
    old_values: { status: 'suspended' },
  });
  t.same(r.body.tables, ['relay_bans', 'users']);

  r = await api.signed(admin, 'GET', '/v1/admin/audit?table=relay_bans');
  t.same(
    r.body.entries.map((e: { new_values: { value: string } }) => e.new_values.value),
    [carol.pk],
  );

  r = await api.signed(admin, 'GET', `/v1/admin/audit?actor=${admin.pk}&table=users`);
  t.equal(r.body.entries.length, 3);
  r = await api.signed(admin, 'GET', '/v1/admin/audit?actor=payments');
  t.same(r.body.entries, []);

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await api.signed(admin, 'GET', `/v1/admin/audit?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...page.body.entries.map((e: { id: string }) => e.id));
    cursor = page.body.next_cursor as string | null;
  } while (cursor);
  const all = await api.signed(admin, 'GET', '/v1/admin/audit');
  t.same(
    seen,
    all.body.entries.map((e: { id: string }) => e.id),
    'the pages together are the whole trail, in order',
  );

  r = await api.signed(admin, 'GET', `/v1/admin/audit?cursor=${Buffer.from('nope').toString('base64url')}`);
  t.same([r.status, r.body.error.field], [400, 'cursor']);
});
