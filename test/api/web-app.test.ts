// The static files of the account page at /app/: served by the service itself from WEB_APP_DIR with a strict
// Content-Security-Policy, revalidated by ETag, and a clear 503 when the app was not built.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { webAppCsp } from '../../src/api/web-app.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';

const dir = mkdtempSync(path.join(tmpdir(), 'nostrx-webapp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  path.join(dir, 'index.html'),
  '<!doctype html><title>x</title><script type="module" src="app.js"></script>',
);
writeFileSync(path.join(dir, 'app.js'), 'console.log(1)');
mkdirSync(path.join(dir, 'img'));
writeFileSync(path.join(dir, 'img', 'a.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');

const app = await startTestApp(t, { env: { WEB_APP_DIR: dir } });
const api = new ApiClient(app.url);

t.test('/app/ is the page, with a policy that allows nothing inline and nothing from elsewhere', async (t) => {
  const r = await api.request('GET', '/app/');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /^text\/html/);
  t.match(r.text, /<title>x<\/title>/);
  const csp = r.headers.get('content-security-policy') ?? '';
  t.equal(csp, webAppCsp);
  t.match(csp, /default-src 'none'/);
  t.match(csp, /script-src 'self'(;|$)/);
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(r.headers.get('x-content-type-options'), 'nosniff');
  t.equal(r.headers.get('cache-control'), 'no-cache');
});

t.test('files by name and type; an unchanged file answers 304; unknown names 404', async (t) => {
  const js = await api.request('GET', '/app/app.js');
  t.same(
    [js.status, js.headers.get('content-type'), js.text],
    [200, 'text/javascript; charset=utf-8', 'console.log(1)'],
  );
  const etag = js.headers.get('etag') ?? '';
  t.match(etag, /^"[\w-]+"$/);
  const again = await api.request('GET', '/app/app.js', { headers: { 'if-none-match': etag } });
  t.same([again.status, again.text], [304, '']);
  t.equal((await api.request('GET', '/app/img/a.svg')).headers.get('content-type'), 'image/svg+xml');
  for (const p of ['/app/nope.js', '/app/../package.json', '/app/%2e%2e/package.json']) {
    const r = await api.request('GET', p);
    t.not(r.status, 200, p);
    t.notMatch(r.text, /nostrx-relay/, `${p}: nothing outside the directory`);
  }
});

t.test('/app redirects to /app/', async (t) => {
  const r = await fetch(`${app.url}/app`, { redirect: 'manual' });
  t.same([r.status, r.headers.get('location')], [301, '/app/']);
});

t.test('without a built app, /app/ says how to build it', async (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'nostrx-webapp-empty-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const bare = await startTestApp(t, { env: { WEB_APP_DIR: path.join(empty, 'missing') } });
  const r = await new ApiClient(bare.url).request('GET', '/app/');
  t.equal(r.status, 503);
  t.match(r.text, /npm run build/);
  t.equal(r.headers.get('content-security-policy'), webAppCsp);
});
