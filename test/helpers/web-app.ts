// What the browser tests of /app/ share: the service started with the web app built for this test file, Chromium
// (test/helpers/browser.ts), pages opened on /app/ with a signer for a key, sign-in, and notes published over the
// relay with their OK answer.
import { Relay } from 'nostr-tools/relay';
import type { BrowserContext } from 'playwright-core';
import type { App } from '../../src/app.js';
import { ApiClient } from './api.js';
import { startTestApp } from './app.js';
import { buildWebAppForTest, launchBrowser, openPage, type TestPage } from './browser.js';
import { buildEvent, type EventParts, type Key } from './events.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface WebTestApp {
  readonly app: App;
  readonly api: ApiClient;
  readonly browser: BrowserContext;
  /** Every page opened, for the final check that none logged a console error. */
  readonly pages: TestPage[];
  /** A new tab on /app/ whose NIP-07 signer holds `key` (none: no signer). */
  open(key: Key | undefined, viewport?: { width: number; height: number }): Promise<TestPage>;
}

export async function startWebTestApp(t: Teardown, env: Record<string, string>): Promise<WebTestApp> {
  const app = await startTestApp(t, { env: { WEB_APP_DIR: await buildWebAppForTest(t), ...env } });
  const browser = await launchBrowser(t);
  const pages: TestPage[] = [];
  return {
    app,
    api: new ApiClient(app.url),
    browser,
    pages,
    async open(key, viewport) {
      const p = await openPage(browser, { ...(key ? { key } : {}), ...(viewport ? { viewport } : {}) });
      pages.push(p);
      await p.page.goto(`${app.url}/app/`);
      return p;
    },
  };
}

/** Clicks the sign-in button and waits for the account page. */
export async function signIn(p: TestPage): Promise<void> {
  await p.page.getByRole('button', { name: 'Sign in with your Nostr signer' }).click();
  await p.page.getByRole('heading', { name: 'Plan and quota' }).waitFor();
}

/** Publishes one event over the relay (nostr-tools), on a connection of its own: its id and the relay's OK. */
export async function publishNote(
  relayUrl: string,
  key: Key,
  parts: EventParts,
): Promise<{ id: string; ok: boolean; message: string }> {
  const relay = await Relay.connect(relayUrl);
  try {
    const ev = buildEvent(key.sk, parts);
    const answer = await relay.publish(ev).then(
      (message) => ({ ok: true, message }),
      (err: unknown) => ({ ok: false, message: err instanceof Error ? err.message : String(err) }),
    );
    return { id: ev.id, ...answer };
  } finally {
    relay.close();
  }
}

/**
 * The timezone (of a few) whose local time is closest to noon now, so that no test step crosses its midnight. Each
 * is a name Chromium offers in the settings page's list (Intl.supportedValuesOf): it lists ICU's canonical names,
 * `Asia/Calcutta` and not `Asia/Kolkata`, so UTC+5:30 made the settings test fail from about 05:30 to 07:00 UTC.
 */
export function noonZone(now = new Date()): string {
  const zones = [
    'Pacific/Kiritimati',
    'Asia/Tokyo',
    'Asia/Karachi',
    'Europe/Paris',
    'UTC',
    'America/New_York',
    'America/Los_Angeles',
    'Pacific/Honolulu',
  ];
  const hour = (z: string) =>
    Number(new Intl.DateTimeFormat('en-US', { hour: 'numeric', hourCycle: 'h23', timeZone: z }).format(now));
  return zones.reduce((best, z) => (Math.abs(hour(z) - 12) < Math.abs(hour(best) - 12) ? z : best));
}
