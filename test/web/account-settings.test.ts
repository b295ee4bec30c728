// The account page's other pages, in a real browser (Chromium) with a NIP-07 signer shim: posts per day on a plan
// with analytics, relays of one's own (and from a NIP-65 list), billing with and without payment providers, the
// export download and account erasure. Every page is checked for console errors; screenshots (the one in
// docs/img/account-page.png among them) go to test/web/artifacts.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import { eventually, screenshot, type TestPage } from '../helpers/browser.js';
import { buildEvent, newKey } from '../helpers/events.js';
import { blockingRelay, healthyRelay } from '../helpers/upstream-relays.js';
import { noonZone, publishNote, signIn, startWebTestApp } from '../helpers/web-app.js';

const admin = newKey();
const alice = newKey();
const healthy = await healthyRelay(t);
const blocking = await blockingRelay(t);
const w = await startWebTestApp(t, {
  ADMIN_PUBKEYS: admin.pk,
  UPSTREAM_RELAYS: [healthy.url, blocking.url].join(','),
  ALLOW_PRIVATE_RELAYS: 'true', // the user adds a loopback test relay of their own
});
const { app, api } = w;

// Alice: her day away from midnight, three notes today, then the premium plan (analytics, relays of her own).
// Set up before the tests (a failure here throws: tap takes no assertion outside a test once it has ended).
const must = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`setting up: ${what} failed`);
};
must(
  (await api.signed(alice, 'PATCH', '/v1/me', { body: { timezone: noonZone(), display_name: 'Alice' } })).status ===
    200,
  'PATCH /v1/me',
);
for (const n of [1, 2, 3]) must((await publishNote(app.relayUrl, alice, { content: `note ${n}` })).ok, `note ${n}`);
const aliceId = (await api.signed(admin, 'GET', `/v1/admin/users?pubkey=${alice.pk}`)).body.users[0].id as string;
must(
  (await api.signed(admin, 'PUT', `/v1/admin/users/${aliceId}/plan`, { body: { plan: 'premium' } })).status === 200,
  'the plan change',
);
const alicePage: TestPage = await w.open(alice);
await signIn(alicePage);

t.test('on a plan with analytics the account page draws posts per day', async (t) => {
  const page = alicePage.page;
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
  t.equal(
    await relay.publish(buildEvent(alice.sk, { kind: 10002, tags: [['r', blocking.url, 'write']], content: '' })),
    '',
  );
  // The list is read when the page opens: open it again.
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('link', { name: 'Relays' }).click();
  await page.locator(`li.relay[data-relay="${blocking.url}"]`).waitFor();
  t.match(
    await page.locator(`li.relay[data-relay="${blocking.url}"]`).innerText(),
    /from your NIP-65 relay list · write · active/,
  );
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
  t.same(await page.locator('li.plan').evaluateAll((els) => els.map((e) => e.getAttribute('data-plan'))), [
    'basic',
    'premium',
    'advanced',
  ]);
  t.match(await page.locator('li.plan[data-plan="premium"]').innerText(), /your plan/);
  t.equal(await page.locator('button[data-provider]').count(), 0);
  t.same(alicePage.errors, []);
});

t.test(
  'billing with providers: a Stripe button where a plan lists it, checkout with {plan, billing_cycle}, its page opened beside',
  async (t) => {
    // GET /v1/plans as it answers where billing is configured (providers, checkout_cycles), and a checkout URL:
    // this branch's service has no payment provider to answer them.
    const page = alicePage.page;
    await page.route('**/v1/plans', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { plans: { code: string }[] };
      const sold = (code: string) => code !== 'basic';
      body.plans = body.plans.map((p) => ({
        ...p,
        providers: sold(p.code) ? ['stripe', 'extensionpay'] : [],
        checkout_cycles: sold(p.code) ? ['monthly', 'yearly'] : [],
      }));
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
    t.equal(
      await page.locator('li.plan[data-plan="basic"] button[data-provider]').count(),
      0,
      'none for a plan no provider sells',
    );
    t.equal(
      await page.locator('li.plan[data-plan="premium"] button[data-provider]').count(),
      0,
      'none for the current plan',
    );
    t.match(await advanced.innerText(), /Or buy it in the NostrX extension \(ExtensionPay\)/);
    await advanced.getByLabel('Billing').selectOption('yearly');
    const [opened] = await Promise.all([
      w.browser.waitForEvent('page'),
      advanced.getByRole('button', { name: 'Pay with card (Stripe)' }).click(),
    ]);
    await opened.waitForLoadState();
    t.same(asked, { plan: 'advanced', billing_cycle: 'yearly' });
    t.equal(opened.url(), `${app.url}/healthz`, "the provider's page, in a tab of its own");
    t.match(page.url(), /#\/billing$/, 'this page stays');
    await opened.close();
    t.same(alicePage.errors, []);
  },
);

t.test('export: everything the service holds, as a JSON download', async (t) => {
  const page = alicePage.page;
  await page.getByRole('link', { name: 'Settings' }).click();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download my data' }).click(),
  ]);
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
  const p = await w.open(dave);
  await signIn(p);
  const before = (await api.signed(dave, 'GET', '/v1/me')).body.id as string;
  await p.page.getByRole('link', { name: 'Settings' }).click();
  const erase = p.page.getByRole('button', { name: 'Erase my account' });
  t.equal(await erase.isDisabled(), true, 'not before the confirmation is typed');
  await p.page.getByLabel(/to confirm/).fill('delete my account');
  await erase.click();
  await p.page.getByText('Your account and its data were erased.').waitFor();
  t.match(p.signed.at(-1)?.tags, [
    ['u', `${app.url}/v1/me`],
    ['method', 'DELETE'],
  ]);
  const after = await api.signed(dave, 'GET', '/v1/me');
  t.not(after.body.id, before, 'the old account is gone (the key now starts a fresh one)');
  t.same(p.errors, []);
});

t.test('no page logged a console error', async (t) => {
  for (const p of w.pages) t.same(p.errors, [], p.page.url());
});
