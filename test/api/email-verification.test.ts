// Email verification end to end: the service sends through nodemailer to a local SMTP server (test/helpers/smtp.ts),
// the test reads the real message, takes the link out of it and opens it. The link verifies the address once,
// within 24 hours, and only while it is still the account's address; receipts go to verified addresses only.
// Without SMTP_URL the address is stored unverified and the API says so; sends are rate-limited per account and
// per address; a mail server that refuses is reported, never taken for a sent email.
import { createServer } from 'node:net';
import t from 'tap';
import { receiptAddress } from '../../src/core/accounts/index.js';
import type { App } from '../../src/app.js';
import { ApiClient } from '../helpers/api.js';
import { startTestApp } from '../helpers/app.js';
import { newKey, type Key } from '../helpers/events.js';
import { linkIn, startMailBox } from '../helpers/smtp.js';

async function userId(app: App, key: Key): Promise<string> {
  return ((await app.db.knex('users').where({ nostr_public_key: key.pk }).first('id')) as { id: string }).id;
}

async function open(link: string, accept = 'application/json') {
  const res = await fetch(link, { headers: { accept } });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    text,
    json: accept.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

t.test('without SMTP_URL the address is stored unverified, and the API says so', async (t) => {
  const app = await startTestApp(t);
  const api = new ApiClient(app.url);
  const alice = newKey();
  const r = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@example.com' } });
  t.equal(r.status, 200);
  t.match(r.body, { email: 'alice@example.com', email_verified: false, email_verification_available: false });
  t.match(r.body.email_verification, { status: 'not_configured', message: /SMTP_URL is not set.*unverified/ });
  const again = await api.signed(alice, 'POST', '/v1/me/email/verification');
  t.match([again.status, again.body.error.code], [503, 'email_not_configured']);
  t.equal(
    await receiptAddress(app.db.knex, await userId(app, alice)),
    undefined,
    'no receipts to an unverified address',
  );
});

t.test('the link in the real message verifies the address, once, while it is the account address', async (t) => {
  const mail = await startMailBox(t);
  const app = await startTestApp(t, {
    env: { SMTP_URL: mail.url, MAIL_FROM: 'NostrX <no-reply@nostrx.test>', EMAIL_RESEND_SECONDS: '0' },
  });
  const api = new ApiClient(app.url);
  const alice = newKey();
  const aliceId = async () => userId(app, alice);

  const set = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@example.com' } });
  t.match(set.body, {
    email: 'alice@example.com',
    email_verified: false,
    email_verification_available: true,
    email_verification: { status: 'sent' },
  });
  const message = await mail.next('alice@example.com');
  t.match(message.raw, /^From: NostrX <no-reply@nostrx\.test>/m, 'sent from MAIL_FROM');
  t.match(message.raw, /^Subject: Confirm your email address for NostrX/m);
  const link = linkIn(message);
  t.ok(link.startsWith(`${app.url}/v1/email/verify?token=nxe_`), 'the link points at PUBLIC_URL');
  t.equal(await receiptAddress(app.db.knex, await aliceId()), undefined, 'not verified yet: no receipts');

  const opened = await open(link);
  t.same(
    [opened.status, opened.json],
    [200, { verified: true, email: 'alice@example.com' }],
    'opening it verifies the address',
  );
  t.match((await api.signed(alice, 'GET', '/v1/me')).body, { email_verified: true });
  t.equal(
    await receiptAddress(app.db.knex, await aliceId()),
    'alice@example.com',
    'receipts go to the verified address',
  );
  const twice = await open(link);
  t.match(
    [twice.status, twice.json],
    [400, { error: { code: 'email_token_invalid', check: 'used' } }],
    'the link works once',
  );
  const stored = (await app.db.knex('email_verifications').select('token_hash')) as { token_hash: string }[];
  t.notOk(
    stored.some((r) => link.includes(r.token_hash)),
    'only a hash of the token is stored',
  );
  const audit = await app.db
    .knex('audit_log')
    .where({ user_id: await aliceId(), table_name: 'users', operation: 'UPDATE' })
    .select('new_values');
  t.match(audit, [{ new_values: { email_verified: true, email: 'alice@example.com' } }], 'audited');
  const verified = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@example.com' } });
  t.match(verified.body.email_verification, { status: 'already_verified' }, 'the same address again sends nothing');
  const resend = await api.signed(alice, 'POST', '/v1/me/email/verification');
  t.match([resend.status, resend.body.error.code], [409, 'email_already_verified']);

  // A new address is unverified until its own link is opened; a link to an earlier address no longer works.
  await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@work.example' } });
  const workLink = linkIn(await mail.next('alice@work.example'));
  t.equal(await receiptAddress(app.db.knex, await aliceId()), undefined, 'a changed address is unverified again');
  await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@home.example' } });
  const homeLink = linkIn(await mail.next('alice@home.example'));
  t.match(
    (await open(workLink)).json,
    { error: { code: 'email_token_invalid', check: 'address_changed' } },
    "a link to an address that is no longer the account's",
  );
  const page = await open(homeLink, 'text/html,application/xhtml+xml');
  t.equal(page.status, 200);
  t.match(page.type, /^text\/html/, 'a browser gets a page');
  t.match(page.text, /Email address confirmed.*alice@home\.example/s);

  const sent = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@late.example' } });
  t.match(sent.body.email_verification, { status: 'sent' });
  const lateLink = linkIn(await mail.next('alice@late.example'));
  // as if sent 25 hours ago
  await app.db
    .knex('email_verifications')
    .where({ email: 'alice@late.example' })
    .update({
      created_at: app.db.knex.raw(`now() - interval '25 hours'`),
      expires_at: app.db.knex.raw(`now() - interval '1 hour'`),
    });
  const late = await open(lateLink, 'text/html');
  t.match([late.status, late.text], [400, /has expired/], 'an expired link is refused (a page for a browser too)');
  t.match((await open(`${app.url}/v1/email/verify?token=nxe_forged`)).json, {
    error: { code: 'email_token_invalid', check: 'unknown' },
  });
  const again = await api.signed(alice, 'POST', '/v1/me/email/verification');
  t.match(
    [again.status, again.body.status, again.body.email],
    [202, 'sent', 'alice@late.example'],
    'a new link on request',
  );
  t.equal((await open(linkIn(await mail.next('alice@late.example')))).status, 200);

  const bob = newKey();
  const none = await api.signed(bob, 'POST', '/v1/me/email/verification');
  t.match([none.status, none.body.error.code], [400, 'email_not_set']);
});

t.test('sends are rate-limited per account and per address', async (t) => {
  const mail = await startMailBox(t);
  const app = await startTestApp(t, {
    env: { SMTP_URL: mail.url, MAIL_FROM: 'no-reply@nostrx.test', EMAIL_SENDS_PER_DAY: '2', EMAIL_RESEND_SECONDS: '0' },
  });
  const api = new ApiClient(app.url);
  const alice = newKey();
  t.match(
    (await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'shared@example.com' } })).body.email_verification,
    { status: 'sent' },
  );
  t.equal((await api.signed(alice, 'POST', '/v1/me/email/verification')).status, 202);
  const third = await api.signed(alice, 'POST', '/v1/me/email/verification');
  t.match(
    [third.status, third.body.error.code],
    [429, 'rate_limited'],
    'a third email to the account within 24 hours: 429',
  );
  t.match(third.body.error.message, /too many verification emails to this account/);
  t.ok(Number(third.headers.get('retry-after')) > 3600, 'Retry-After says when the oldest send leaves the 24 hours');
  const bob = newKey();
  const other = await api.signed(bob, 'PATCH', '/v1/me', { body: { email: 'shared@example.com' } });
  t.match(
    other.body.email_verification,
    { status: 'rate_limited', message: /to this address/ },
    'another account cannot send a third one to that address',
  );
  t.equal(mail.received.length, 2, 'two emails in all');

  const slow = await startTestApp(t, { env: { SMTP_URL: mail.url, MAIL_FROM: 'no-reply@nostrx.test' } });
  const slowApi = new ApiClient(slow.url);
  const carol = newKey();
  t.match(
    (await slowApi.signed(carol, 'PATCH', '/v1/me', { body: { email: 'carol@example.com' } })).body.email_verification,
    { status: 'sent' },
  );
  const soon = await slowApi.signed(carol, 'POST', '/v1/me/email/verification');
  t.equal(soon.status, 429, 'and by default one a minute at most');
  t.ok(Number(soon.headers.get('retry-after')) <= 60);
});

t.test('a mail server that refuses is reported, not taken for a sent email', async (t) => {
  // A loopback port nothing listens on: taken from the system, then let go.
  const probe = createServer();
  const port = await new Promise<number>((resolve) =>
    probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
  );
  await new Promise((r) => probe.close(r));
  const app = await startTestApp(t, {
    env: { SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_FROM: 'no-reply@nostrx.test', EMAIL_RESEND_SECONDS: '0' },
  });
  const api = new ApiClient(app.url);
  const alice = newKey();
  const r = await api.signed(alice, 'PATCH', '/v1/me', { body: { email: 'alice@example.com' } });
  t.equal(r.status, 200, 'the address is stored');
  t.match(r.body, { email: 'alice@example.com', email_verified: false, email_verification: { status: 'send_failed' } });
  const again = await api.signed(alice, 'POST', '/v1/me/email/verification');
  t.match([again.status, again.body.error.code], [502, 'email_send_failed']);
});
