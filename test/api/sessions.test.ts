// Sessions: one NIP-98 request buys a bearer token that works until it expires or is revoked. Only its SHA-256 is
// stored, with the extension and browser details the client gave.
import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient, type Reply } from '../helpers/api.js';
import { newKey } from '../helpers/events.js';

const app = await startTestApp(t, { redis: true, env: { SESSION_TTL_SECONDS: '3600' } });
const api = new ApiClient(app.url);
const db = app.db.knex;

function sessionRefused(t: Test, r: Reply, message: RegExp): void {
  t.equal(r.status, 401);
  t.equal(r.headers.get('www-authenticate'), 'Nostr');
  t.equal(r.body.error.code, 'unauthorized');
  t.equal(r.body.error.check, 'session');
  t.match(r.body.error.message, message);
}

t.test(
  'POST /v1/sessions returns a token and its expiry; the database holds only its hash and the client details',
  async (t) => {
    const alice = newKey();
    const started = Date.now();
    const r = await api.signed(alice, 'POST', '/v1/sessions', {
      body: {
        extension_id: 'nostrx-ext-1',
        extension_version: '1.4.2',
        browser_name: 'Firefox',
        browser_version: '133.0',
        os: 'Linux',
      },
    });
    t.equal(r.status, 201);
    t.match(r.body.token, /^nxs_[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(r.body.expires_at);
    t.ok(Math.abs(expires - (started + 3600_000)) < 5000, 'expires after SESSION_TTL_SECONDS');
    t.equal(r.body.session.current, true);
    t.equal(r.body.session.browser_name, 'Firefox');

    const row = await db('user_sessions').where({ id: r.body.session.id }).first();
    t.equal(
      row.session_token,
      createHash('sha256').update(r.body.token).digest('hex'),
      'the SHA-256 of the token is stored',
    );
    t.not(row.session_token, r.body.token);
    t.match(row, {
      extension_id: 'nostrx-ext-1',
      extension_version: '1.4.2',
      browser_name: 'Firefox',
      browser_version: '133.0',
      os: 'Linux',
      ip_address: '127.0.0.1',
      is_active: true,
    });
    const user = await db('users').where({ nostr_public_key: alice.pk }).first('id', 'last_login_at');
    t.equal(row.user_id, user.id);
    t.ok(
      user.last_login_at && Math.abs(new Date(user.last_login_at).getTime() - started) < 5000,
      'the login is recorded on the user',
    );
  },
);

t.test('a session works for the following calls, without signing each one', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  for (let i = 0; i < 3; i++) {
    const me = await api.bearer(token, 'GET', '/v1/me');
    t.equal(me.status, 200);
    t.equal(me.body.pubkey, alice.pk);
  }
  const patched = await api.bearer(token, 'PATCH', '/v1/me', { body: { display_name: 'Alice' } });
  t.equal(patched.status, 200, 'a body needs no payload tag with a session');
  t.equal(patched.body.display_name, 'Alice');
});

t.test('POST /v1/sessions without a body is fine; details are optional', async (t) => {
  const r = await api.signed(newKey(), 'POST', '/v1/sessions');
  t.equal(r.status, 201);
  t.equal(r.body.session.extension_id, 'api');
});

t.test('a session cannot start another session: POST /v1/sessions takes NIP-98 only', async (t) => {
  const token = await api.session(newKey());
  const r = await api.bearer(token, 'POST', '/v1/sessions', { body: {} });
  t.equal(r.status, 401);
  t.equal(r.body.error.check, 'scheme');
});

t.test('GET /v1/sessions lists the live sessions and marks the current one', async (t) => {
  const alice = newKey();
  const a = await api.session(alice, { browser_name: 'Firefox' });
  const b = await api.session(alice, { browser_name: 'Chrome' });
  const r = await api.bearer(b, 'GET', '/v1/sessions');
  t.equal(r.status, 200);
  t.equal(r.body.sessions.length, 2);
  t.same(r.body.sessions.map((s: { browser_name: string; current: boolean }) => [s.browser_name, s.current]).sort(), [
    ['Chrome', true],
    ['Firefox', false],
  ]);
  t.notOk(JSON.stringify(r.body).includes(a), 'tokens are never shown again');
  t.notOk(JSON.stringify(r.body).includes('session_token'));
});

t.test('DELETE /v1/sessions/current signs out: the token stops working at once', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  const other = await api.session(alice);
  const r = await api.bearer(token, 'DELETE', '/v1/sessions/current');
  t.equal(r.status, 204);
  sessionRefused(t, await api.bearer(token, 'GET', '/v1/me'), /was revoked/);
  t.equal((await api.bearer(other, 'GET', '/v1/me')).status, 200, 'other sessions live on');
  const row = await db('user_sessions')
    .where({ session_token: createHash('sha256').update(token).digest('hex') })
    .first();
  t.equal(row.is_active, false);
  t.equal(row.revoked_reason, 'signed out');
  t.ok(row.revoked_at);
});

t.test('DELETE /v1/sessions/current with a NIP-98 request has no session to end', async (t) => {
  const r = await api.signed(newKey(), 'DELETE', '/v1/sessions/current');
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'no_session');
});

t.test('DELETE /v1/sessions/:id revokes one of your sessions', async (t) => {
  const alice = newKey();
  const phone = await api.session(alice, { os: 'Android' });
  const laptop = await api.session(alice, { os: 'Linux' });
  const list = await api.bearer(laptop, 'GET', '/v1/sessions');
  const phoneId = list.body.sessions.find((s: { os: string }) => s.os === 'Android').id;
  t.equal((await api.signed(alice, 'DELETE', `/v1/sessions/${phoneId}`)).status, 204);
  sessionRefused(t, await api.bearer(phone, 'GET', '/v1/me'), /was revoked/);
  t.equal((await api.bearer(laptop, 'GET', '/v1/sessions')).body.sessions.length, 1);
  const again = await api.bearer(laptop, 'DELETE', `/v1/sessions/${phoneId}`);
  t.equal(again.status, 404, 'a revoked session is gone');
  t.equal(again.body.error.code, 'session_not_found');
  const bad = await api.bearer(laptop, 'DELETE', '/v1/sessions/not-a-uuid');
  t.equal(bad.status, 400);
  t.equal(bad.body.error.field, 'id');
});

t.test('another user cannot see or revoke your sessions', async (t) => {
  const alice = newKey();
  const bob = newKey();
  const aliceToken = await api.session(alice);
  const aliceId = (await api.bearer(aliceToken, 'GET', '/v1/sessions')).body.sessions[0].id;
  const bobToken = await api.session(bob);
  const bobList = await api.bearer(bobToken, 'GET', '/v1/sessions');
  t.same(bobList.body.sessions.map((s: { id: string }) => s.id).includes(aliceId), false);
  const r = await api.bearer(bobToken, 'DELETE', `/v1/sessions/${aliceId}`);
  t.equal(r.status, 404, "Alice's session id is unknown to Bob");
  t.equal((await api.bearer(aliceToken, 'GET', '/v1/me')).status, 200, "Alice's session still works");
});

t.test('an expired session is refused', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  await db('user_sessions')
    .where({ session_token: createHash('sha256').update(token).digest('hex') })
    .update({ expires_at: new Date(Date.now() - 1000) });
  sessionRefused(t, await api.bearer(token, 'GET', '/v1/me'), /has expired/);
  const fresh = await api.session(alice);
  t.equal((await api.bearer(fresh, 'GET', '/v1/sessions')).body.sessions.length, 1, 'expired sessions are not listed');
});

t.test('a session expires after SESSION_TTL_SECONDS', async (t) => {
  let clock = Math.floor(Date.now() / 1000);
  const shortLived = await startTestApp(t, { env: { SESSION_TTL_SECONDS: '60' }, now: () => clock });
  const local = new ApiClient(shortLived.url);
  const token = await local.session(newKey());
  t.equal((await local.bearer(token, 'GET', '/v1/me')).status, 200);
  clock += 61;
  sessionRefused(t, await local.bearer(token, 'GET', '/v1/me'), /has expired/);
});

t.test('an unknown or malformed token is refused', async (t) => {
  sessionRefused(t, await api.bearer('nxs_' + 'A'.repeat(43), 'GET', '/v1/me'), /not known/);
  sessionRefused(t, await api.bearer('something-else', 'GET', '/v1/me'), /not known/);
});

t.test('erasing the account ends its sessions', async (t) => {
  const alice = newKey();
  const token = await api.session(alice);
  t.equal((await api.signed(alice, 'DELETE', '/v1/me')).status, 204);
  sessionRefused(t, await api.bearer(token, 'GET', '/v1/me'), /not known/);
});
