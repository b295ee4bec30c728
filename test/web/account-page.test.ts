// The user's account page at /app/, in a real browser (Chromium) with a NIP-07 signer shim: no signer, sign-in
// (also by keyboard alone), the quota after notes published over the relay, the publish history with each
// upstream relay's outcome, the refused fourth note with its reset in the user's timezone, revoking a session,
// sign-out and the popup-sized layout. Every page is checked for console errors; screenshots go to
// test/web/artifacts. (Plans with analytics, relays, billing, export and erasure: account-settings.test.ts.)
import t from 'tap';
import {
  eventually,
  horizontalOverflow,
  screenshot,
  settled,
  storedSession,
  unlabelledControls,
  type TestPage,
} from '../helpers/browser.js';
import { newKey } from '../helpers/events.js';
import { blockingRelay, downThenUpRelay, healthyRelay } from '../helpers/upstream-relays.js';
import { noonZone, publishNote, signIn, startWebTestApp } from '../helpers/web-app.js';

const alice = newKey();
const healthy = await healthyRelay(t);
const blocking = await blockingRelay(t);
const down = await downThenUpRelay(t);
const w = await startWebTestApp(t, {
  UPSTREAM_RELAYS: [healthy.url, blocking.url, down.url].join(','),
  FORWARD_TIMEOUT_MS: '2000',
  // A retry far away, so the down relay's row stays pending with a next attempt for the whole test.
  FORWARD_BACKOFF_BASE_MS: '600000',
});
const { app, api } = w;
const zone = noonZone();

t.test('without a NIP-07 signer the page says how to get one, and asks for no key', async (t) => {
  const p = await w.open(undefined);
  await p.page.getByText('No Nostr signer found').waitFor();
  t.match(await p.page.locator('body').innerText(), /Install a NIP-07 signer extension/);
  t.equal(await p.page.locator('input[type="password"]').count(), 0, 'no field asks for a secret');
  t.same(p.errors, []);
});

let alicePage: TestPage;

t.test('keyboard only: sign in with Tab and Enter, move between pages with the keyboard', async (t) => {
  const p = await w.open(alice);
  const signInButton = p.page.getByRole('button', { name: 'Sign in with your Nostr signer' });
  await signInButton.waitFor();
  for (let i = 0; i < 10 && !(await signInButton.evaluate((b) => b === b.ownerDocument.activeElement)); i++)
    await p.page.keyboard.press('Tab');
  await p.page.keyboard.press('Enter');
  await p.page.getByRole('heading', { name: 'Plan and quota' }).waitFor();
  const history = p.page.getByRole('link', { name: 'History' });
  for (let i = 0; i < 10 && !(await history.evaluate((a) => a === a.ownerDocument.activeElement)); i++)
    await p.page.keyboard.press('Tab');
  await p.page.keyboard.press('Enter');
  await p.page.getByRole('heading', { name: 'Publish history' }).waitFor();
  t.pass('reached by keyboard');
  await p.page.getByRole('button', { name: 'Sign out' }).click();
  await p.page.getByText('You are signed out').waitFor();
  t.same(p.errors, []);
});

t.test(
  'sign-in: the signer signs one NIP-98 request for POST /v1/sessions, then the page uses the session',
  async (t) => {
    alicePage = await w.open(alice);
    await signIn(alicePage);
    t.equal(alicePage.signed.length, 1, 'one signature');
    const tags = alicePage.signed[0]?.tags ?? [];
    t.same(
      tags.filter((tag) => tag[0] === 'u' || tag[0] === 'method'),
      [
        ['u', `${app.url}/v1/sessions`],
        ['method', 'POST'],
      ],
    );
    t.equal(alicePage.signed[0]?.kind, 27235);
    t.match(await storedSession(alicePage.page), { pubkey: alice.pk, token: /^\S+$/ });
    await alicePage.page.getByText('0 of 3 today').waitFor();
    t.same(alicePage.errors, []);
  },
);

t.test('settings: the timezone is saved through the API', async (t) => {
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByLabel(/^Timezone/).selectOption(zone);
  await page.getByLabel('Display name').fill('Alice');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Saved.').waitFor();
  const me = await api.signed(alice, 'GET', '/v1/me');
  t.same([me.body.timezone, me.body.display_name], [zone, 'Alice']);
  t.same(alicePage.errors, []);
});

t.test('a note published over the relay: "1 of 3 today", and in the history with each relay outcome', async (t) => {
  const note = await publishNote(app.relayUrl, alice, { content: 'first note from the test' });
  t.same([note.ok, note.message], [true, '']);
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('1 of 3 today').waitFor();

  await page.getByRole('link', { name: 'History' }).click();
  const item = page.locator(`li.event[data-event-id="${note.id}"]`);
  await item.waitFor();
  t.match(await item.innerText(), /first note from the test/);
  // The forwarder works in the background: refresh until every relay has its outcome.
  await eventually(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    const statuses = await item
      .locator('li.outcome')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    return statuses.length === 3 && statuses.includes('published') && statuses.includes('rejected');
  }, 'the relay outcomes');
  const outcome = (url: string) => item.locator('li.outcome').filter({ hasText: url }).innerText();
  t.match(await outcome(healthy.url), /accepted/);
  t.match(await outcome(blocking.url), /refused: blocked: this relay only takes events from its members/);
  t.match(await outcome(down.url), /pending after 1 attempt, next attempt .*\(in \d+ min\)/);
  await screenshot(page, 'history');
  t.same(alicePage.errors, []);
});

t.test('a refused fourth note: the page shows the limit and the reset in the user timezone', async (t) => {
  for (const n of [2, 3]) t.equal((await publishNote(app.relayUrl, alice, { content: `note ${n}` })).ok, true);
  const fourth = await publishNote(app.relayUrl, alice, { content: 'note 4' });
  t.equal(fourth.ok, false);
  t.match(fourth.message, /^rate-limited: daily limit of 3 posts reached on the basic plan; resets at /);

  const page = alicePage.page;
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('3 of 3 today').waitFor();
  const quota = await api.signed(alice, 'GET', '/v1/me/quota');
  const reset = new Intl.DateTimeFormat('en-US', { hour: '2-digit', minute: '2-digit', timeZone: zone }).format(
    new Date(quota.body.daily.resets_at),
  );
  const shown = (await page.locator('.quota[data-period="today"] .warn').innerText()).replace(/\s+/g, ' ');
  t.match(shown, 'Limit reached: 3 posts a day on the basic plan');
  t.match(shown, `reset at ${reset.replace(/\s+/g, ' ')} (${zone})`);
  t.match(reset.replace(/\s+/g, ' '), /^12:00 AM$/, 'the reset is midnight in the user timezone');
  t.same(alicePage.errors, []);
});

t.test('revoking a session signs that page out', async (t) => {
  const other = await w.open(alice);
  await signIn(other);
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Sessions' }).click();
  const rows = page.locator('li.session');
  await eventually(
    async () => (await page.getByRole('button', { name: 'Refresh' }).click(), (await rows.count()) === 2),
    'two sessions',
  );
  await rows
    .filter({ hasNotText: 'this tab' })
    .getByRole('button', { name: /^Revoke/ })
    .click();
  await eventually(async () => (await rows.count()) === 1, 'the revoked session gone from the list');

  // The other tab finds out with its next request.
  await other.page.getByRole('button', { name: 'Refresh' }).click();
  await other.page.getByText('Your session ended').waitFor();
  await other.page.getByRole('button', { name: 'Sign in with your Nostr signer' }).waitFor();
  t.equal(await storedSession(other.page), null, 'the token is forgotten');
  // Its one expected error: the browser reports the 401 that told it so.
  t.same(
    other.errors.filter((e) => !/status of 401/.test(e)),
    [],
  );
  other.errors.length = 0;
  t.same(alicePage.errors, []);
});

t.test('at 360 × 600 (an extension popup) no page scrolls sideways', async (t) => {
  const popup = await w.open(alice, { width: 360, height: 600 });
  await signIn(popup);
  for (const tab of ['Account', 'History', 'Relays', 'Billing', 'Sessions', 'Settings']) {
    await popup.page.getByRole('link', { name: tab, exact: true }).click();
    await popup.page.locator('main .card h2').first().waitFor();
    await settled(popup.page);
    t.equal(await horizontalOverflow(popup.page), 0, `${tab}: no horizontal scrolling`);
    t.same(await unlabelledControls(popup.page), [], `${tab}: every control has a name`);
  }
  await popup.page.getByRole('link', { name: 'Account' }).click();
  await popup.page.getByText('3 of 3 today').waitFor();
  await screenshot(popup.page, 'account-popup-360');
  t.same(popup.errors, []);
});

t.test('sign-out revokes the session', async (t) => {
  const page = alicePage.page;
  const token = (await storedSession(page))?.token ?? '';
  t.equal((await api.bearer(token, 'GET', '/v1/me')).status, 200);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByText('You are signed out').waitFor();
  t.equal((await api.bearer(token, 'GET', '/v1/me')).status, 401, 'the token no longer works');
  t.same(alicePage.errors, []);
});

t.test('no page logged a console error', async (t) => {
  for (const p of w.pages) t.same(p.errors, [], p.page.url());
});
