// Delivery audits with NIP-77: an upstream relay acknowledges every event (OK true) and then loses some. Reconciling
// with it finds exactly those, sends them again as recorded forwarding attempts, and its statistics show them as
// "acknowledged then missing". A relay without NIP-77 is reported and left alone; the route is for premium plans.
import t from 'tap';
import { changePlan } from '../../../src/core/accounts/account-admin.js';
import { startTestApp } from '../../helpers/app.js';
import { ApiClient } from '../../helpers/api.js';
import { buildEvent, newKey, type Key } from '../../helpers/events.js';
import { forwardTestEnv, publishRows, waitForFinal } from '../../helpers/forwarding.js';
import { waitFor } from '../../helpers/wait-for.js';
import { healthyRelay, startTestRelay } from '../../helpers/upstream-relays.js';

let taken = 0;
const forgetful = await startTestRelay(t, { name: 'forgetful', negentropy: { forget: () => ++taken % 3 === 1 } }); // loses the 1st, 4th, …
const plain = await healthyRelay(t, 'no-nip77');
const app = await startTestApp(t, { env: { ...forwardTestEnv, RECONCILE_ENABLED: 'false', RECONCILE_DAYS: '2' } });
const api = new ApiClient(app.url);
const relayCtx = { via: 'relay' as const, authed: new Set<string>() };

async function onPlan(key: Key, plan: string): Promise<void> {
  await api.signed(key, 'GET', '/v1/me');
  const user = (await app.db.knex('users').where({ nostr_public_key: key.pk }).first('id')) as { id: string };
  await changePlan(app.accountAdmin, user.id, plan, 'test');
}

t.test('a relay that lost events it acknowledged is found out, sent them again, and shows it', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'premium');
  for (const url of [forgetful.url, plain.url])
    t.equal((await api.signed(alice, 'POST', '/v1/relays', { body: { url } })).status, 201);
  const now = Math.floor(Date.now() / 1000);
  const events = Array.from({ length: 6 }, (_, i) =>
    buildEvent(alice.sk, { content: `post ${i}`, created_at: now - 100 + i }),
  );
  const old = buildEvent(alice.sk, { content: 'before the window', created_at: now - 3 * 86400 });
  for (const ev of [...events, old]) t.equal((await app.admit(ev, relayCtx)).status, 'accepted');
  await waitForFinal(
    app.db.knex,
    [...events, old].map((e) => e.id),
  );
  t.equal(forgetful.held.size, 7 - 3, 'the relay acknowledged all seven and kept four');
  const lost = [...events, old].filter((e) => !forgetful.held.has(e.id));
  const lostInWindow = lost.filter((e) => e.id !== old.id);

  const audit = await api.signed(alice, 'POST', '/v1/me/relays/reconcile');
  t.equal(audit.status, 200, audit.text);
  t.equal(audit.body.days, 2);
  const byUrl = new Map((audit.body.relays as { url: string }[]).map((r) => [r.url, r]));
  t.same(byUrl.get(forgetful.url), {
    url: forgetful.url,
    supports_nip77: true,
    checked: 6,
    missing: lostInWindow.length,
    acknowledged_then_missing: lostInWindow.length,
    queued: lostInWindow.length,
  });
  t.match(
    byUrl.get(plain.url),
    { supports_nip77: false, checked: 0, missing: 0 },
    'a relay without NIP-77 is not audited',
  );

  await waitFor('the lost events to be delivered again', async () =>
    lostInWindow.every((e) => forgetful.held.has(e.id)),
  );
  const rows = await waitForFinal(
    app.db.knex,
    lostInWindow.map((e) => e.id),
  );
  const again = rows.filter((r) => r.relay_url === forgetful.url);
  t.equal(again.length, 2 * lostInWindow.length, 'each lost event has a second outbox row for that relay');
  t.ok(
    again.every((r) => r.status === 'published' && r.attempts >= 1),
    'recorded as forwarding attempts, delivered',
  );
  t.notOk(forgetful.held.has(old.id), 'an event before RECONCILE_DAYS is not audited');

  const listed = await api.signed(alice, 'GET', '/v1/relays');
  const stats = new Map(
    (listed.body.relays as { url: string; stats: Record<string, unknown> }[]).map((r) => [r.url, r.stats]),
  );
  t.match(stats.get(forgetful.url), { acknowledged_then_missing: lostInWindow.length, last_reconciled_at: String });
  t.match(stats.get(plain.url), { acknowledged_then_missing: 0 });

  const second = await api.signed(alice, 'POST', '/v1/me/relays/reconcile');
  t.match(
    second.body.relays.find((r: { url: string }) => r.url === forgetful.url),
    { checked: 6, missing: 0, queued: 0 },
    'once delivered again, nothing is missing',
  );
  t.same(await app.deliveryAudit.sweep(), [], 'the daily sweep skips relays reconciled within the day');
  t.ok(
    (
      await publishRows(
        app.db.knex,
        events.map((e) => e.id),
      )
    ).length > 0,
  );
});

t.test('the audit is for plans with relays of their own', async (t) => {
  const basic = newKey();
  const r = await api.signed(basic, 'POST', '/v1/me/relays/reconcile');
  t.equal(r.status, 403);
  t.match(r.body.error, { code: 'plan_required', plan: 'premium' });
});
