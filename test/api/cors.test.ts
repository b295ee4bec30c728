// CORS on /v1, as a browser sees it: the extension's content script on x.com (or a dashboard page) first sends a
// preflight, because every call carries an Authorization header, then the call itself with its Origin. The answer
// must carry Access-Control-Allow-Origin for the page to read it, errors included; credentials are never allowed.
// The requests are real ones over HTTP with the Origin header a browser would set.
import t from 'tap';
import { loadConfig, ConfigError } from '../../src/config.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { createTestDatabaseUrl } from '../helpers/db.js';
import { newKey } from '../helpers/events.js';

const databaseUrl = await createTestDatabaseUrl(t);
const alice = newKey();
const extension = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';

function preflight(api: ApiClient, path: string, origin: string, method = 'PATCH') {
  return api.request('OPTIONS', path, {
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization,content-type',
    },
  });
}

t.test('by default any origin may call /v1 (no credentials: the API takes only Authorization headers)', async (t) => {
  const app = await startTestApp(t, { databaseUrl });
  const api = new ApiClient(app.url);

  const pre = await preflight(api, '/v1/me', 'https://x.com');
  t.equal(pre.status, 204, 'the preflight is answered');
  t.equal(pre.headers.get('access-control-allow-origin'), '*');
  t.match(pre.headers.get('access-control-allow-methods'), /PATCH/);
  t.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
  t.equal(pre.headers.get('access-control-max-age'), '600');
  t.equal(pre.headers.get('access-control-allow-credentials'), null, 'credentials are never allowed');

  const me = await api.signed(alice, 'GET', '/v1/me', { headers: { origin: 'https://x.com' } });
  t.equal(me.status, 200, 'a NIP-98 call from a page works as any other');
  t.equal(me.headers.get('access-control-allow-origin'), '*');
  t.match(me.headers.get('access-control-expose-headers'), /Retry-After/, 'a 429 can be read with its Retry-After');

  const refused = await api.request('GET', '/v1/me', { headers: { origin: 'https://x.com' } });
  t.equal(refused.status, 401);
  t.equal(
    refused.headers.get('access-control-allow-origin'),
    '*',
    'an error carries the header too, so the page reads why',
  );
  t.equal(refused.body.error.code, 'unauthorized');

  const metrics = await api.request('GET', '/metrics', { headers: { origin: 'https://x.com' } });
  t.equal(metrics.headers.get('access-control-allow-origin'), null, 'the operations routes are not for pages');
  const info = await api.request('GET', '/', {
    headers: { origin: 'https://x.com', accept: 'application/nostr+json' },
  });
  t.equal(info.headers.get('access-control-allow-origin'), '*', 'NIP-11 keeps its own headers');
});

t.test(
  'API_CORS_ORIGINS names the origins allowed; others get no header and the browser refuses the answer',
  async (t) => {
    const app = await startTestApp(t, { databaseUrl, env: { API_CORS_ORIGINS: `${extension}, https://x.com` } });
    const api = new ApiClient(app.url);

    const pre = await preflight(api, '/v1/relays', extension, 'POST');
    t.equal(pre.status, 204);
    t.equal(pre.headers.get('access-control-allow-origin'), extension, 'the allowed origin is echoed');
    t.match(pre.headers.get('vary'), /Origin/, 'caches keep answers for different origins apart');

    const me = await api.signed(alice, 'GET', '/v1/me', { headers: { origin: 'https://x.com' } });
    t.equal(me.headers.get('access-control-allow-origin'), 'https://x.com');

    const other = await preflight(api, '/v1/me', 'https://evil.example');
    t.equal(other.headers.get('access-control-allow-origin'), null, 'an origin not listed is not allowed');
    const direct = await api.signed(alice, 'GET', '/v1/me', { headers: { origin: 'https://evil.example' } });
    t.equal(direct.status, 200, 'CORS binds browsers only: a call with a valid signature is still served');
    t.equal(direct.headers.get('access-control-allow-origin'), null);
  },
);

t.test('an OPTIONS that is not a preflight gets the API error body, not plain text', async (t) => {
  const app = await startTestApp(t, { databaseUrl });
  const api = new ApiClient(app.url);
  const bare = await api.request('OPTIONS', '/v1/me');
  t.equal(bare.status, 400);
  t.match(bare.headers.get('content-type'), /application\/json/);
  t.equal(bare.body.error.code, 'preflight_invalid');
  t.match(bare.body.error.message, /Origin and Access-Control-Request-Method/);
  const noMethod = await api.request('OPTIONS', '/v1/me', { headers: { origin: 'https://x.com' } });
  t.equal(noMethod.status, 400, 'an Origin alone is not a preflight either');
  t.equal(noMethod.body.error.code, 'preflight_invalid');
  const real = await preflight(api, '/v1/me', 'https://x.com');
  t.equal(real.status, 204, 'a real preflight is still answered');
});

t.test('API_CORS_ORIGINS=none turns CORS off', async (t) => {
  const app = await startTestApp(t, { databaseUrl, env: { API_CORS_ORIGINS: 'none' } });
  const api = new ApiClient(app.url);
  const pre = await preflight(api, '/v1/me', 'https://x.com');
  t.equal(pre.headers.get('access-control-allow-origin'), null);
  const me = await api.signed(alice, 'GET', '/v1/me', { headers: { origin: 'https://x.com' } });
  t.equal(me.status, 200);
  t.equal(me.headers.get('access-control-allow-origin'), null);
});

t.test('an origin with a path, or not an origin at all, is a configuration error naming the key', async (t) => {
  for (const bad of ['https://x.com/', 'https://x.com/home', 'x.com', 'https://x.com?a=1']) {
    t.throws(
      () => loadConfig({ API_CORS_ORIGINS: bad }),
      new ConfigError(
        `API_CORS_ORIGINS must list origins like https://example.com or chrome-extension://<id> (no path), or *, got "${bad}"`,
      ),
      bad,
    );
  }
  t.same(
    loadConfig({ API_CORS_ORIGINS: ' https://x.com ,moz-extension://0a1b2c3d-0000-4000-8000-000000000000,* ' })
      .apiCorsOrigins,
    ['https://x.com', 'moz-extension://0a1b2c3d-0000-4000-8000-000000000000', '*'],
  );
});
