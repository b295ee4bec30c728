// The user's own relays: only on plans with custom relays (403 naming the plan that has them), ws(s):// URLs that
// resolve to public addresses only (SSRF guard), at most MAX_CUSTOM_RELAYS, and only ever one's own.
import t from 'tap';
import { changePlan } from '../../src/core/accounts/account-admin.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey, type Key } from '../helpers/events.js';

const app = await startTestApp(t, { env: { MAX_CUSTOM_RELAYS: '2' } });
const api = new ApiClient(app.url);

async function onPlan(key: Key, plan: string): Promise<void> {
  await api.signed(key, 'GET', '/v1/me');
  const user = await app.db.knex('users').where({ nostr_public_key: key.pk }).first('id');
  await changePlan(app.accountAdmin, user.id, plan, 'test');
}

t.test('on the basic plan every relay route is a 403 naming the plan that allows it', async (t) => {
  const basic = newKey();
  for (const [method, path, body] of [
    ['GET', '/v1/relays', undefined],
    ['POST', '/v1/relays', { url: 'wss://1.1.1.1' }],
    ['PATCH', '/v1/relays/00000000-0000-4000-8000-000000000000', { name: 'x' }],
    ['DELETE', '/v1/relays/00000000-0000-4000-8000-000000000000', undefined],
  ] as const) {
    const r = await api.signed(basic, method, path, body ? { body } : {});
    t.equal(r.status, 403, `${method} ${path}`);
    t.equal(r.body.error.code, 'plan_required');
    t.equal(r.body.error.plan, 'premium');
    t.equal(
      r.body.error.message,
      'your plan basic does not include relays of your own; the premium plan (Premium) does',
    );
  }
});

t.test('a premium user adds, lists, changes and removes relays of their own', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'premium');
  const added = await api.signed(alice, 'POST', '/v1/relays', {
    body: { url: 'WSS://1.1.1.1:443', name: 'cloudflare' },
  });
  t.equal(added.status, 201);
  t.match(added.body, {
    url: 'wss://1.1.1.1/',
    name: 'cloudflare',
    source: 'api',
    is_active: true,
    read: true,
    write: true,
  });
  t.match(added.body.stats, { total_publishes: 0, successful_publishes: 0, failed_publishes: 0 });

  const list = await api.signed(alice, 'GET', '/v1/relays');
  t.equal(list.status, 200);
  t.equal(list.body.max, 2);
  t.same(
    list.body.relays.map((r: { url: string }) => r.url),
    ['wss://1.1.1.1/'],
  );

  const id = added.body.id as string;
  const patched = await api.signed(alice, 'PATCH', `/v1/relays/${id}`, { body: { name: 'one', write: false } });
  t.equal(patched.status, 200);
  t.match(patched.body, { name: 'one', write: false, read: true });
  const off = await api.signed(alice, 'PATCH', `/v1/relays/${id}`, { body: { is_active: false } });
  t.equal(off.body.is_active, false);

  t.equal((await api.signed(alice, 'DELETE', `/v1/relays/${id}`)).status, 204);
  t.same((await api.signed(alice, 'GET', '/v1/relays')).body.relays, []);
  const gone = await api.signed(alice, 'DELETE', `/v1/relays/${id}`);
  t.equal(gone.status, 404);
  t.equal(gone.body.error.code, 'relay_not_found');
});

t.test('the same relay twice is a 409', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'premium');
  t.equal((await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://8.8.8.8' } })).status, 201);
  const again = await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://8.8.8.8/' } });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'relay_exists');
});

t.test('private, loopback and link-local addresses and non-WebSocket URLs are refused (SSRF)', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'advanced');
  for (const [url, message] of [
    ['ws://127.0.0.1:7000', /loopback address; only public addresses are allowed/],
    ['ws://10.0.0.1', /private address/],
    ['wss://192.168.1.10', /private address/],
    ['ws://169.254.169.254/latest/meta-data', /link-local address/],
    ['ws://[::1]:8080', /loopback address/],
    ['ws://[::ffff:10.0.0.1]', /private address/],
    ['https://1.1.1.1', /must start with ws:\/\/ or wss:\/\//],
    ['wss://user:secret@1.1.1.1', /must not contain credentials/],
    ['not a url at all', /not a valid URL/],
  ] as const) {
    const r = await api.signed(alice, 'POST', '/v1/relays', { body: { url } });
    t.equal(r.status, 400, url);
    t.equal(r.body.error.code, 'relay_url_invalid');
    t.equal(r.body.error.field, 'url');
    t.match(r.body.error.message, message);
  }
  t.same((await api.signed(alice, 'GET', '/v1/relays')).body.relays, [], 'nothing was added');
});

t.test('ALLOW_PRIVATE_RELAYS lets the operator allow private addresses', async (t) => {
  const open = await startTestApp(t, { env: { ALLOW_PRIVATE_RELAYS: 'true' } });
  const local = new ApiClient(open.url);
  const alice = newKey();
  await local.signed(alice, 'GET', '/v1/me');
  const user = await open.db.knex('users').where({ nostr_public_key: alice.pk }).first('id');
  await changePlan(open.accountAdmin, user.id, 'premium', 'test');
  const r = await local.signed(alice, 'POST', '/v1/relays', { body: { url: 'ws://127.0.0.1:7000' } });
  t.equal(r.status, 201);
});

t.test('the plan cap: a third active relay is a 403', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'premium');
  t.equal((await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://1.0.0.1' } })).status, 201);
  const second = await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://9.9.9.9' } });
  t.equal(second.status, 201);
  const third = await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://8.8.4.4' } });
  t.equal(third.status, 403);
  t.equal(third.body.error.code, 'relay_limit_reached');
  t.match(third.body.error.message, /already have 2 relays of your own/);
  // Switching one off frees a place; switching it on again past the cap is refused.
  t.equal(
    (await api.signed(alice, 'PATCH', `/v1/relays/${second.body.id}`, { body: { is_active: false } })).status,
    200,
  );
  t.equal((await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://8.8.4.4' } })).status, 201);
  const back = await api.signed(alice, 'PATCH', `/v1/relays/${second.body.id}`, { body: { is_active: true } });
  t.equal(back.status, 403);
  t.equal(back.body.error.code, 'relay_limit_reached');
});

t.test("another user's relay cannot be seen, changed or removed", async (t) => {
  const alice = newKey();
  const bob = newKey();
  await onPlan(alice, 'premium');
  await onPlan(bob, 'premium');
  const mine = await api.signed(alice, 'POST', '/v1/relays', { body: { url: 'wss://1.1.1.1' } });
  const id = mine.body.id as string;
  t.same((await api.signed(bob, 'GET', '/v1/relays')).body.relays, []);
  const patch = await api.signed(bob, 'PATCH', `/v1/relays/${id}`, { body: { name: 'mine now' } });
  t.equal(patch.status, 404);
  const del = await api.signed(bob, 'DELETE', `/v1/relays/${id}`);
  t.equal(del.status, 404);
  const still = await api.signed(alice, 'GET', '/v1/relays');
  t.same(
    still.body.relays.map((r: { id: string; name: string | null }) => [r.id, r.name]),
    [[id, null]],
  );
});

t.test('bodies are validated', async (t) => {
  const alice = newKey();
  await onPlan(alice, 'premium');
  let r = await api.signed(alice, 'POST', '/v1/relays', { body: { name: 'no url' } });
  t.same([r.status, r.body.error.field], [400, 'url']);
  r = await api.signed(alice, 'PATCH', '/v1/relays/00000000-0000-4000-8000-000000000000', { body: {} });
  t.equal(r.status, 400);
  r = await api.signed(alice, 'PATCH', '/v1/relays/nope', { body: { name: 'x' } });
  t.same([r.status, r.body.error.field], [400, 'id']);
});
