// The operator's console at /app/#/admin/…, in a real browser (Chromium) with a NIP-07 signer shim holding an
// ADMIN_PUBKEYS key: the live overview (its chart draws the admissions of the last minutes, the relay table shows
// each breaker), suspending a user (whose next event the relay refuses) and reactivating them, a plan change,
// NIP-86 bans, the audit log and the reports. Every page is checked for console errors and, at 360 px, for
// sideways scrolling; screenshots go to test/web/artifacts.
import t from 'tap';
import { Relay } from 'nostr-tools/relay';
import type { Page } from 'playwright-core';
import {
  eventually,
  horizontalOverflow,
  screenshot,
  settled,
  unlabelledControls,
  type TestPage,
} from '../helpers/browser.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';
import { blockingRelay, downThenUpRelay, healthyRelay } from '../helpers/upstream-relays.js';
import { signIn, startWebTestApp } from '../helpers/web-app.js';

const admin = newKey();
const bob = newKey();
const carol = newKey();
const healthy = await healthyRelay(t, 'healthy', 15);
const blocking = await blockingRelay(t);
const down = await downThenUpRelay(t);
const w = await startWebTestApp(t, {
  ADMIN_PUBKEYS: admin.pk,
  UPSTREAM_RELAYS: [healthy.url, blocking.url, down.url].join(','),
  FORWARD_TIMEOUT_MS: '2000',
  FORWARD_BACKOFF_BASE_MS: '600000',
  FORWARD_CIRCUIT_FAILURES: '2',
  FORWARD_CIRCUIT_PAUSE_MS: '600000',
});
const { app, api } = w;

const relay = await Relay.connect(app.relayUrl);
t.teardown(() => relay.close());

/** Publishes over the relay; the OK message, or the refusal's. */
async function publish(key: Key, content: string): Promise<{ ok: boolean; message: string }> {
  return relay.publish(buildEvent(key.sk, { content })).then(
    (m) => ({ ok: true, message: m }),
    (err: unknown) => ({ ok: false, message: err instanceof Error ? err.message : String(err) }),
  );
}

/** A tab signed in as the admin. */
async function open(viewport?: { width: number; height: number }): Promise<TestPage> {
  const p = await w.open(admin, viewport);
  await signIn(p);
  return p;
}

const go = (page: Page, tab: string) =>
  page.getByRole('navigation', { name: 'Operator console' }).getByRole('link', { name: tab, exact: true }).click();

/**
 * Pixels of the chart's canvas in the series colour, and how far apart vertically they lie: a line of zeros is
 * flat; data makes it rise.
 */
async function seriesRise(
  page: Page,
  selector: string,
  rgb: [number, number, number],
): Promise<{ pixels: number; rise: number }> {
  return page.evaluate<{ pixels: number; rise: number }>(`(() => {
    const canvas = document.querySelector(${JSON.stringify(selector)} + ' canvas');
    if (!canvas) return { pixels: 0, rise: 0 };
    const { data, width, height } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const [r, g, b] = ${JSON.stringify(rgb)};
    let pixels = 0, top = height, bottom = 0;
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40 && data[i + 3] > 128) {
        pixels++; top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
    return { pixels, rise: pixels ? bottom - top : 0 };
  })()`);
}

let console_: TestPage;

t.test('traffic to look at: accepted, duplicate, invalid and over-quota events', async (t) => {
  const note = buildEvent(bob.sk, { content: 'bob one' });
  t.equal(await relay.publish(note), '');
  t.match(await relay.publish(note), /^duplicate:/);
  await t.rejects(relay.publish({ ...buildEvent(bob.sk), sig: '0'.repeat(128) }), /^invalid:/);
  for (const n of [1, 2, 3]) t.equal((await publish(carol, `carol ${n}`)).ok, true);
  t.match(await publish(carol, 'carol 4'), { ok: false, message: /^rate-limited:/ });
});

t.test('an admin signs in and the live overview draws the last minutes', async (t) => {
  console_ = await open();
  const page = console_.page;
  await page.getByRole('navigation', { name: 'Operator console' }).waitFor();
  await go(page, 'Overview');
  await page.locator('#events-chart canvas').waitFor();
  t.match(
    await page.locator('#events-chart [role="img"]').getAttribute('aria-label'),
    /Last hour: 4 accepted, 1 duplicates, 2 refused/,
  );
  const accepted = await seriesRise(page, '#events-chart', [0x15, 0x80, 0x3d]);
  t.ok(accepted.pixels > 0, 'the accepted series is drawn');
  t.ok(accepted.rise > 20, `and rises above zero (${accepted.rise} px)`);
  const tiles = await page.locator('.tiles').innerText();
  t.match(tiles, /Connections\s+\d+/);
  t.match(tiles, /Admission p99\s+≤ [\d.]+ ms/);
  t.match(tiles, /Outbox\s+\d+/);

  // The down relay fails its first attempts and its breaker opens; the page refreshes itself every few seconds.
  const row = (url: string) => page.locator(`tr[data-relay="${url}"]`);
  await row(down.url).locator('[data-breaker="open"]').waitFor({ timeout: 20_000 });
  await eventually(
    async () =>
      /100 %/.test(await row(healthy.url).innerText()) && /rejected 4/.test(await row(blocking.url).innerText()),
    'every relay measured',
    20_000,
  );
  t.match(await row(healthy.url).innerText(), /100 %\s+\d+(\.\d+)? ms\s+closed/);
  t.match(await row(blocking.url).innerText(), /0 %.*closed.*rejected 4/s);
  t.match(await row(down.url).innerText(), /0 %\s+—\s+open \(paused until/);
  await screenshot(page, 'operator-overview');
  t.same(console_.errors, []);
});

t.test(
  'an admin suspends a user and the relay refuses their next event; reactivating lets them post again',
  async (t) => {
    const page = console_.page;
    await go(page, 'Users');
    await page.getByLabel('Search').fill(bob.pk);
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator(`li.user[data-pubkey="${bob.pk}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: /^Suspend/ }).click();
    await page.locator(`li.user[data-pubkey="${bob.pk}"][data-status="suspended"]`).waitFor();
    t.match(await publish(bob, 'while suspended'), { ok: false, message: /^blocked: / });

    await row.getByRole('button', { name: /^Reactivate/ }).click();
    await page.locator(`li.user[data-pubkey="${bob.pk}"][data-status="active"]`).waitFor();
    t.match(await publish(bob, 'back again'), { ok: true });
    t.same(console_.errors, []);
  },
);

t.test("an admin changes a user's plan", async (t) => {
  const page = console_.page;
  const row = page.locator(`li.user[data-pubkey="${bob.pk}"]`);
  await row.getByLabel(/^Plan/).selectOption('premium');
  await row.getByRole('button', { name: 'Change plan' }).click();
  await eventually(async () => /premium plan/.test(await row.innerText()), 'the new plan shown');
  const me = await api.signed(bob, 'GET', '/v1/me');
  t.equal(me.body.plan, 'premium');
  t.same(console_.errors, []);
});

t.test('bans and allows through NIP-86: a banned pubkey is refused at once, and the ban can be lifted', async (t) => {
  const page = console_.page;
  await go(page, 'Bans');
  const bans = page.locator('section[aria-labelledby="bans-title"]');
  await bans.getByText('None.').waitFor();
  await bans.getByLabel('Pubkey (hex)').fill(carol.pk);
  await bans.getByLabel('Reason (optional)').fill('spam from the test');
  await bans.getByRole('button', { name: 'Ban pubkey' }).click();
  await bans.locator(`li[data-value="${carol.pk}"]`).waitFor();
  t.match(await bans.locator(`li[data-value="${carol.pk}"]`).innerText(), /spam from the test/);
  t.match(await publish(carol, 'banned now'), { ok: false, message: 'blocked: this pubkey is banned from this relay' });
  await bans
    .locator(`li[data-value="${carol.pk}"]`)
    .getByRole('button', { name: /^Lift ban/ })
    .click();
  await bans.getByText('None.').waitFor();
  t.same(console_.errors, []);
});

t.test("the audit log shows the admin's changes, filtered by actor, table and user", async (t) => {
  const page = console_.page;
  await go(page, 'Audit log');
  const rows = page.locator('table.audit tbody tr');
  await rows.first().waitFor();
  await page.getByLabel('Actor').fill(admin.pk);
  await page.getByLabel('Table').selectOption('relay_bans');
  await page.getByRole('button', { name: 'Filter' }).click();
  await eventually(
    async () =>
      (await rows.count()) === 2 &&
      (await rows.evaluateAll((r) => r.every((e) => e.getAttribute('data-table') === 'relay_bans'))),
    'the ban and its lifting',
  );
  const bobId = (await api.signed(bob, 'GET', '/v1/me')).body.id as string;
  await page.getByLabel('Table').selectOption('');
  await page.getByLabel('User id').fill(bobId);
  await page.getByRole('button', { name: 'Filter' }).click();
  // suspended, reactivated, the plan change (its subscription row)
  await eventually(async () => (await rows.count()) === 3, "bob's three changes");
  t.match(await rows.first().innerText(), /INSERT user_subscriptions/);
  t.same(console_.errors, []);
});

t.test('the reports draw their charts for a date range', async (t) => {
  const page = console_.page;
  await go(page, 'Reports');
  await page.locator('#engagement-chart canvas').waitFor();
  t.match(await page.locator('#engagement-chart [role="img"]').getAttribute('aria-label'), /posts by \d+ users/);
  await page.locator('#relay-report-chart canvas').waitFor();
  await page.getByText('No payments in this range.').waitFor();
  const bars = await seriesRise(page, '#engagement-chart', [0x25, 0x63, 0xeb]);
  t.ok(bars.rise > 20, 'the bars rise');
  t.same(console_.errors, []);
});

t.test('at 360 × 600 no console page scrolls sideways', async (t) => {
  const popup = await open({ width: 360, height: 600 });
  for (const tab of ['Overview', 'Reports', 'Users', 'Bans', 'Audit log']) {
    await go(popup.page, tab);
    await popup.page.locator('main .card h2').first().waitFor();
    await settled(popup.page);
    t.equal(await horizontalOverflow(popup.page), 0, `${tab}: no horizontal scrolling`);
    t.same(await unlabelledControls(popup.page), [], `${tab}: every control has a name`);
  }
  await go(popup.page, 'Overview');
  await popup.page.locator('#events-chart canvas').waitFor();
  await screenshot(popup.page, 'operator-overview-360');
  t.same(popup.errors, []);
});

t.test('no console page logged a console error', async (t) => {
  for (const p of w.pages) t.same(p.errors, [], p.page.url());
});
