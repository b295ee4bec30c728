// The user's account page at /app/, in a real browser (Chromium) with a NIP-07 signer shim: sign-in, the quota
// after notes published over the relay, the publish history with each upstream relay's outcome, the refused
// fourth note, sessions and sign-out, settings, and the popup-sized layout. Every page is checked for console
// errors; screenshots go to test/web/artifacts.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildWebAppForTest, eventually, horizontalOverflow, launchBrowser, openPage, screenshot, settled, storedSession, unlabelledControls, type TestPage } from '../helpers/browser.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { blockingRelay, downThenUpRelay, healthyRelay } from '../helpers/upstream-relays.js';

const admin = newKey();
const alice = newKey();
const healthy = await healthyRelay(t);
const blocking = await blockingRelay(t);
const down = await downThenUpRelay(t);
const app = await startTestApp(t, {
  env: {
    ADMIN_PUBKEYS: admin.pk,
    UPSTREAM_RELAYS: [healthy.url, blocking.url, down.url].join(','),
    WEB_APP_DIR: await buildWebAppForTest(t),
    FORWARD_TIMEOUT_MS: '2000',
    // A retry far away, so the down relay's row stays pending with a next attempt for the whole test.
    FORWARD_BACKOFF_BASE_MS: '600000',
    ALLOW_PRIVATE_RELAYS: 'true', // the user adds a loopback test relay of their own
  },
});
const api = new ApiClient(app.url);
const browser = await launchBrowser(t);
const pages: TestPage[] = [];

/** The timezone (of a few) whose local time is closest to noon now, so no test step crosses its midnight. */
function noonZone(): string {
  const zones = ['Pacific/Kiritimati', 'Asia/Tokyo', 'Asia/Kolkata', 'Europe/Paris', 'UTC', 'America/New_York', 'America/Los_Angeles', 'Pacific/Honolulu'];
  const hour = (z: string) => Number(new Intl.DateTimeFormat('en-US', { hour: 'numeric', hourCycle: 'h23', timeZone: z }).format(new Date()));
  return zones.reduce((best, z) => (Math.abs(hour(z) - 12) < Math.abs(hour(best) - 12) ? z : best));
}
const zone = noonZone();

async function open(key: Key | undefined, viewport?: { width: number; height: number }): Promise<TestPage> {
  const p = await openPage(browser, { ...(key ? { key } : {}), ...(viewport ? { viewport } : {}) });
  pages.push(p);
  await p.page.goto(`${app.url}/app/`);
  return p;
}

async function signIn(p: TestPage): Promise<void> {
  await p.page.getByRole('button', { name: 'Sign in with your Nostr signer' }).click();
  await p.page.getByRole('heading', { name: 'Plan and quota' }).waitFor();
}

async function publishNote(key: Key, content: string): Promise<{ id: string; ok: boolean; message: string }> {
  const relay = await Relay.connect(app.relayUrl);
  try {
    const ev = buildEvent(key.sk, { content });
    const message = await relay.publish(ev).then(
      (m) => ({ ok: true, message: m }),
      (err: unknown) => ({ ok: false, message: err instanceof Error ? err.message : String(err) }),
    );
    return { id: ev.id, ...message };
  } finally {
    relay.close();
  }
}

t.test('without a NIP-07 signer the page says how to get one, and asks for no key', async (t) => {
  const p = await open(undefined);
  await p.page.getByText('No Nostr signer found').waitFor();
  t.match(await p.page.locator('body').innerText(), /Install a NIP-07 signer extension/);
  t.equal(await p.page.locator('input[type="password"]').count(), 0, 'no field asks for a secret');
  t.same(p.errors, []);
});

let alicePage: TestPage;

t.test('keyboard only: sign in with Tab and Enter, move between pages with the keyboard', async (t) => {
  const p = await open(alice);
  const signInButton = p.page.getByRole('button', { name: 'Sign in with your Nostr signer' });
  await signInButton.waitFor();
  for (let i = 0; i < 10 && !(await signInButton.evaluate((b) => b === b.ownerDocument.activeElement)); i++) await p.page.keyboard.press('Tab');
  await p.page.keyboard.press('Enter');
  await p.page.getByRole('heading', { name: 'Plan and quota' }).waitFor();
  const history = p.page.getByRole('link', { name: 'History' });
  for (let i = 0; i < 10 && !(await history.evaluate((a) => a === a.ownerDocument.activeElement)); i++) await p.page.keyboard.press('Tab');
  await p.page.keyboard.press('Enter');
  await p.page.getByRole('heading', { name: 'Publish history' }).waitFor();
  t.pass('reached by keyboard');
  await p.page.getByRole('button', { name: 'Sign out' }).click();
  await p.page.getByText('You are signed out').waitFor();
  t.same(p.errors, []);
});

t.test('sign-in: the signer signs one NIP-98 request for POST /v1/sessions, then the page uses the session', async (t) => {
  alicePage = await open(alice);
  await signIn(alicePage);
  t.equal(alicePage.signed.length, 1, 'one signature');
  const tags = alicePage.signed[0]?.tags ?? [];
  t.same(tags.filter((tag) => tag[0] === 'u' || tag[0] === 'method'), [
    ['u', `${app.url}/v1/sessions`],
    ['method', 'POST'],
  ]);
  t.equal(alicePage.signed[0]?.kind, 27235);
  t.match(await storedSession(alicePage.page), { pubkey: alice.pk, token: /^\S+$/ });
  await alicePage.page.getByText('0 of 3 today').waitFor();
  t.same(alicePage.errors, []);
});

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
  const note = await publishNote(alice, 'first note from the test');
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
    const statuses = await item.locator('li.outcome').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
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
  for (const n of [2, 3]) t.equal((await publishNote(alice, `note ${n}`)).ok, true);
  const fourth = await publishNote(alice, 'note 4');
  t.equal(fourth.ok, false);
  t.match(fourth.message, /^rate-limited: daily limit of 3 posts reached on the basic plan; resets at /);

  const page = alicePage.page;
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('3 of 3 today').waitFor();
  const quota = await api.signed(alice, 'GET', '/v1/me/quota');
  const reset = new Intl.DateTimeFormat('en-US', { hour: '2-digit', minute: '2-digit', timeZone: zone }).format(new Date(quota.body.daily.resets_at));
  const shown = (await page.locator('.quota[data-period="today"] .warn').innerText()).replace(/\s+/g, ' ');
  t.match(shown, 'Limit reached: 3 posts a day on the basic plan');
  t.match(shown, `reset at ${reset.replace(/\s+/g, ' ')} (${zone})`);
  t.match(reset.replace(/\s+/g, ' '), /^12:00 AM$/, 'the reset is midnight in the user timezone');
  t.same(alicePage.errors, []);
});

t.test('revoking a session signs that page out', async (t) => {
  const other = await open(alice);
  await signIn(other);
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Sessions' }).click();
  const rows = page.locator('li.session');
  await eventually(async () => (await page.getByRole('button', { name: 'Refresh' }).click(), (await rows.count()) === 2), 'two sessions');
  await rows.filter({ hasNotText: 'this tab' }).getByRole('button', { name: /^Revoke/ }).click();
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
  const popup = await open(alice, { width: 360, height: 600 });
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

t.test('on a plan with analytics the account page draws posts per day', async (t) => {
  const user = await api.signed(admin, 'GET', `/v1/admin/users?pubkey=${alice.pk}`);
  const changed = await api.signed(admin, 'PUT', `/v1/admin/users/${user.body.users[0].id}/plan`, { body: { plan: 'premium' } });
  t.equal(changed.status, 200);
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('3 of 25 today').waitFor();
  // The usage recorder writes the daily totals in batches: reload until today's 3 posts are in.
  await eventually(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    const label = (await page.locator('#posts-chart [role="img"]').getAttribute('aria-label')) ?? '';
    return /3 posts in 30 days/.test(label);
  }, "the chart's figures");
  t.ok(await page.locator('#posts-chart canvas').count(), 'a chart canvas');
  await screenshot(page, 'account-page');
  t.same(alicePage.errors, []);
});

t.test('relays of their own: add, remove, and the ones from their NIP-65 list', async (t) => {
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Relays' }).click();
  await page.getByText('No NIP-65 relay list yet').waitFor();
  await page.getByLabel('Relay URL').fill(healthy.url);
  await page.getByLabel('Name (optional)').fill('my test relay');
  await page.getByRole('button', { name: 'Add relay' }).click();
  const mine = page.locator(`li.relay[data-relay="${healthy.url}"]`);
  await mine.waitFor();
  t.match(await mine.innerText(), /my test relay[\s\S]*added here · read \+ write · active/);

  const relay = await Relay.connect(app.relayUrl);
  t.teardown(() => relay.close());
  t.equal(await relay.publish(buildEvent(alice.sk, { kind: 10002, tags: [['r', blocking.url, 'write']], content: '' })), '');
  // The list is read when the page opens: open it again.
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('link', { name: 'Relays' }).click();
  await page.locator(`li.relay[data-relay="${blocking.url}"]`).waitFor();
  t.match(await page.locator(`li.relay[data-relay="${blocking.url}"]`).innerText(), /from your NIP-65 relay list · write · active/);
  t.match(await page.locator('[data-nip65]').innerText(), /1 of these come from your NIP-65 relay list/);

  await mine.getByRole('button', { name: /^Remove/ }).click();
  await mine.waitFor({ state: 'detached' });
  t.same(
    (await api.signed(alice, 'GET', '/v1/relays')).body.relays.map((r: { url: string }) => r.url),
    [blocking.url],
  );
  t.same(alicePage.errors, []);
});

t.test('billing: the plan, no payments, and no pay buttons when the service lists no providers', async (t) => {
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Billing' }).click();
  await page.getByText('No payments yet.').waitFor();
  await page.locator('li.plan').first().waitFor();
  t.same(await page.locator('li.plan').evaluateAll((els) => els.map((e) => e.getAttribute('data-plan'))), ['basic', 'premium', 'advanced']);
  t.match(await page.locator('li.plan[data-plan="premium"]').innerText(), /your plan/);
  t.equal(await page.locator('button[data-provider]').count(), 0);
  t.same(alicePage.errors, []);
});

t.test('billing with providers: a Stripe button where a plan lists it, checkout with {plan, billing_cycle}, its page opened beside', async (t) => {
  // GET /v1/plans as it answers where billing is configured (providers, checkout_cycles), and a checkout URL:
  // this branch's service has no payment provider to answer them.
  const page = alicePage.page;
  await page.route('**/v1/plans', async (route) => {
    const res = await route.fetch();
    const body = (await res.json()) as { plans: { code: string }[] };
    const sold = (code: string) => code !== 'basic';
    body.plans = body.plans.map((p) => ({ ...p, providers: sold(p.code) ? ['stripe', 'extensionpay'] : [], checkout_cycles: sold(p.code) ? ['monthly', 'yearly'] : [] }));
    await route.fulfill({ response: res, json: body });
  });
  let asked: unknown;
  await page.route('**/v1/subscription/checkout', async (route) => {
    asked = route.request().postDataJSON();
    await route.fulfill({ json: { url: `${app.url}/healthz` } });
  });
  t.teardown(() => page.unrouteAll());
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('link', { name: 'Billing' }).click();
  const advanced = page.locator('li.plan[data-plan="advanced"]');
  await advanced.getByRole('button', { name: 'Pay with card (Stripe)' }).waitFor();
  t.equal(await page.locator('li.plan[data-plan="basic"] button[data-provider]').count(), 0, 'none for a plan no provider sells');
  t.equal(await page.locator('li.plan[data-plan="premium"] button[data-provider]').count(), 0, 'none for the current plan');
  t.match(await advanced.innerText(), /Or buy it in the NostrX extension \(ExtensionPay\)/);
  await advanced.getByLabel('Billing').selectOption('yearly');
  const [opened] = await Promise.all([browser.waitForEvent('page'), advanced.getByRole('button', { name: 'Pay with card (Stripe)' }).click()]);
  await opened.waitForLoadState();
  t.same(asked, { plan: 'advanced', billing_cycle: 'yearly' });
  t.equal(opened.url(), `${app.url}/healthz`, "the provider's page, in a tab of its own");
  t.match(page.url(), /#\/billing$/, 'this page stays');
  await opened.close();
  t.same(alicePage.errors, []);
});

t.test('export: everything the service holds, as a JSON download', async (t) => {
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Settings' }).click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download my data' }).click()]);
  t.equal(download.suggestedFilename(), 'nostrx-export.json');
  const stream = await download.createReadStream();
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  t.equal(doc.tables.users[0].nostr_public_key, alice.pk);
  t.equal(doc.tables.nostr_events.length, 4, 'three notes and the relay list');
  t.same(alicePage.errors, []);
});

t.test('account deletion: confirmed by typing, signed by the signer, and the page signs out', async (t) => {
  const dave = newKey();
  const p = await open(dave);
  await signIn(p);
  const before = (await api.signed(dave, 'GET', '/v1/me')).body.id as string;
  await p.page.getByRole('link', { name: 'Settings' }).click();
  const erase = p.page.getByRole('button', { name: 'Erase my account' });
  t.equal(await erase.isDisabled(), true, 'not before the confirmation is typed');
  await p.page.getByLabel(/to confirm/).fill('delete my account');
  await erase.click();
  await p.page.getByText('Your account and its data were erased.').waitFor();
  t.match(p.signed.at(-1)?.tags, [['u', `${app.url}/v1/me`], ['method', 'DELETE']]);
  const after = await api.signed(dave, 'GET', '/v1/me');
  t.not(after.body.id, before, 'the old account is gone (the key now starts a fresh one)');
  t.same(p.errors, []);
});

t.test('sign-out revokes the session', async (t) => {
  const page = alicePage.page;
  const token = (await storedSession(page))?.token ?? '';
  t.equal((await api.bearer(token, 'GET', '/v1/me')).status, 200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out').waitFor();
  t.equal((await api.bearer(token, 'GET', '/v1/me')).status, 401, 'the token no longer works');
  t.same(alicePage.errors, []);
});

t.test('no page logged a console error', async (t) => {
  for (const p of pages) t.same(p.errors, [], p.page.url());
});
