// NIP-98 on the HTTP API, through nostr-tools' getToken and real HTTP requests: Alice's correctly signed request
// passes once; every way a header can be wrong is a 401 with `WWW-Authenticate: Nostr` and a body naming the check.
import t, { type Test } from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient, portOf, type CallOptions, type Reply } from '../helpers/api.js';
import { newKey } from '../helpers/events.js';

const app = await startTestApp(t, { redis: true });
const api = new ApiClient(app.url);
const alice = newKey();
const now = () => Math.floor(Date.now() / 1000);

function refused(t: Test, r: Reply, check: string, message?: RegExp): void {
  t.equal(r.status, 401, `401 for ${check}`);
  t.equal(r.headers.get('www-authenticate'), 'Nostr');
  t.equal(r.body?.error?.code, 'unauthorized');
  t.equal(r.body?.error?.check, check);
  if (message) t.match(r.body?.error?.message, message);
}

t.test('a correctly signed request is answered, and creates the account on first contact', async (t) => {
  const r = await api.signed(alice, 'GET', '/v1/me');
  t.equal(r.status, 200);
  t.equal(r.body.pubkey, alice.pk);
  t.equal(r.body.plan, 'basic');
  t.equal(r.body.status, 'active');
});

t.test('the query string is part of the signed URL', async (t) => {
  t.equal((await api.signed(alice, 'GET', '/v1/events?limit=5')).status, 200);
  refused(t, await api.signed(alice, 'GET', '/v1/events?limit=5', { signUrl: `${app.url}/v1/events` }), 'url');
  refused(t, await api.signed(alice, 'GET', '/v1/events', { signUrl: `${app.url}/v1/events?limit=5` }), 'url');
});

t.test('a wrong URL is refused: another host, another path, another scheme', async (t) => {
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { signUrl: 'https://evil.example/v1/me' }),
    'url',
    /u tag does not match/,
  );
  refused(t, await api.signed(alice, 'GET', '/v1/me', { signUrl: `${app.url}/v1/me/export` }), 'url');
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { signUrl: app.url.replace('http:', 'https:') + '/v1/me' }),
    'url',
  );
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, tags: e.tags.filter((x) => x[0] !== 'u') }) }),
    'url',
    /no u tag/,
  );
});

t.test('a wrong method is refused', async (t) => {
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { signMethod: 'POST' }),
    'method',
    /method tag does not match the request method GET/,
  );
  refused(t, await api.signed(alice, 'DELETE', '/v1/sessions/current', { signMethod: 'GET' }), 'method');
});

t.test('created_at must be within 60 s of now, on both sides', async (t) => {
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, created_at: now() - 120 }) }),
    'created_at',
    /in the past, the limit is 60 s/,
  );
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, created_at: now() + 120 }) }),
    'created_at',
    /in the future, the limit is 60 s/,
  );
  t.equal(
    (await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, created_at: now() - 30 }) })).status,
    200,
    '30 s old is fine',
  );
});

t.test('a request with a body needs a payload tag over its exact bytes', async (t) => {
  const body = { display_name: 'Alice' };
  refused(t, await api.signed(alice, 'PATCH', '/v1/me', { body, payloadOf: null }), 'payload', /no payload tag/);
  refused(
    t,
    await api.signed(alice, 'PATCH', '/v1/me', { body, payloadOf: { display_name: 'Mallory' } }),
    'payload',
    /does not match the request body/,
  );
  // The same JSON with other bytes (whitespace) is another body.
  refused(
    t,
    await api.signed(alice, 'PATCH', '/v1/me', { raw: JSON.stringify(body, null, 2), payloadOf: body }),
    'payload',
  );
  const ok = await api.signed(alice, 'PATCH', '/v1/me', { body });
  t.equal(ok.status, 200);
  t.equal(ok.body.display_name, 'Alice');
});

t.test('a payload tag on a request without a body must be the hash of nothing', async (t) => {
  refused(t, await api.signed(alice, 'GET', '/v1/me', { payloadOf: { x: 1 } }), 'payload', /empty request body/);
});

t.test('the event must be kind 27235', async (t) => {
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, kind: 1 }) }),
    'kind',
    /must be kind 27235, got 1/,
  );
  refused(t, await api.signed(alice, 'GET', '/v1/me', { tamper: (e) => ({ ...e, kind: 22242 }) }), 'kind');
});

t.test('a bad signature or id is refused', async (t) => {
  const flip = (hex: string) => hex.slice(0, -2) + (hex.endsWith('00') ? '11' : '00');
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { afterSign: (e) => ({ ...e, sig: flip(e.sig) }) }),
    'signature',
    /signature is invalid/,
  );
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { afterSign: (e) => ({ ...e, content: 'changed after signing' }) }),
    'signature',
    /id does not match/,
  );
  const mallory = newKey();
  refused(
    t,
    await api.signed(alice, 'GET', '/v1/me', { afterSign: (e) => ({ ...e, pubkey: mallory.pk }) }),
    'signature',
  );
});

t.test('a token is accepted once', async (t) => {
  const authorization = await api.token(alice, 'GET', '/v1/me');
  t.equal((await api.request('GET', '/v1/me', { headers: { authorization } })).status, 200);
  refused(t, await api.request('GET', '/v1/me', { headers: { authorization } }), 'replay', /already used/);
});

t.test(
  'two identical getToken tokens (same key, URL, method and second) are one event: the second is a replay',
  async (t) => {
    const second = now();
    const same: CallOptions = { noNonce: true, tamper: (e) => ({ ...e, created_at: second }) };
    const first = await api.token(alice, 'GET', '/v1/me/quota', same);
    const again = await api.token(alice, 'GET', '/v1/me/quota', same);
    const id = (h: string) => (JSON.parse(Buffer.from(h.slice(6), 'base64').toString('utf8')) as { id: string }).id;
    t.equal(id(first), id(again), 'nostr-tools builds the same event twice');
    t.equal((await api.request('GET', '/v1/me/quota', { headers: { authorization: first } })).status, 200);
    refused(t, await api.request('GET', '/v1/me/quota', { headers: { authorization: again } }), 'replay');
  },
);

t.test('a refused token is not remembered, so a mistake does not burn it', async (t) => {
  // The same signed event fails on the wrong route (url), then passes on its own.
  const authorization = await api.token(alice, 'GET', '/v1/me');
  refused(t, await api.request('GET', '/v1/me/quota', { headers: { authorization } }), 'url');
  t.equal((await api.request('GET', '/v1/me', { headers: { authorization } })).status, 200);
});

t.test('a token used on one instance is refused on another that shares Redis', async (t) => {
  // Two instances behind one public URL (as behind a load balancer), sharing Postgres and Redis.
  const env = { PUBLIC_URL: 'https://relay.example.com' };
  const one = await startTestApp(t, { databaseUrl: app.config.databaseUrl, redis: app.config.redisPrefix, env });
  const two = await startTestApp(t, { databaseUrl: app.config.databaseUrl, redis: app.config.redisPrefix, env });
  const authorization = await new ApiClient('https://relay.example.com').token(alice, 'GET', '/v1/me');
  t.equal(
    (await new ApiClient(`http://127.0.0.1:${portOf(one)}`).request('GET', '/v1/me', { headers: { authorization } }))
      .status,
    200,
  );
  refused(
    t,
    await new ApiClient(`http://127.0.0.1:${portOf(two)}`).request('GET', '/v1/me', { headers: { authorization } }),
    'replay',
  );
});

t.test(
  'behind a proxy, the signed URL is PUBLIC_URL + path + query, not the address the server listens on',
  async (t) => {
    const proxied = await startTestApp(t, { env: { PUBLIC_URL: 'https://relay.example.com/' } });
    const direct = new ApiClient(`http://127.0.0.1:${portOf(proxied)}`);
    refused(t, await direct.signed(alice, 'GET', '/v1/me?x=1'), 'url');
    t.equal(
      (await direct.signed(alice, 'GET', '/v1/me?x=1', { signUrl: 'https://relay.example.com/v1/me?x=1' })).status,
      200,
    );
  },
);

t.test('without Redis the replay cache is in the process', async (t) => {
  const solo = await startTestApp(t);
  const local = new ApiClient(solo.url);
  const authorization = await local.token(alice, 'GET', '/v1/me');
  t.equal((await local.request('GET', '/v1/me', { headers: { authorization } })).status, 200);
  refused(t, await local.request('GET', '/v1/me', { headers: { authorization } }), 'replay');
});

t.test('malformed headers name their check', async (t) => {
  refused(t, await api.request('GET', '/v1/me'), 'missing');
  refused(t, await api.request('GET', '/v1/me', { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } }), 'scheme');
  refused(t, await api.request('GET', '/v1/me', { headers: { authorization: 'Nostr %%%not-base64%%%' } }), 'base64');
  refused(
    t,
    await api.request('GET', '/v1/me', {
      headers: { authorization: `Nostr ${Buffer.from('not json').toString('base64')}` },
    }),
    'json',
  );
  refused(
    t,
    await api.request('GET', '/v1/me', {
      headers: { authorization: `Nostr ${Buffer.from('{"kind":27235}').toString('base64')}` },
    }),
    'shape',
  );
  refused(
    t,
    await api.request('GET', '/v1/me', { headers: { authorization: `Nostr ${'A'.repeat(5000)}` } }),
    'too-long',
  );
});

t.test('public routes need no signature; every other route does', async (t) => {
  t.equal((await api.request('GET', '/v1/plans')).status, 200);
  t.equal((await api.request('GET', '/v1/openapi.json')).status, 200);
  for (const [method, path] of [
    ['GET', '/v1/me'],
    ['GET', '/v1/me/quota'],
    ['GET', '/v1/me/export'],
    ['GET', '/v1/events'],
    ['GET', '/v1/relays'],
    ['GET', '/v1/stats'],
    ['GET', '/v1/subscription'],
    ['GET', '/v1/sessions'],
    ['POST', '/v1/sessions'],
    ['DELETE', '/v1/me'],
    ['GET', '/v1/admin/users'],
  ] as const) {
    refused(t, await api.request(method, path), 'missing');
  }
});
