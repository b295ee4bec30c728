// A real browser for the tests of the account page and operator console: Debian's Chromium (/usr/bin/chromium,
// `apt-get install -y chromium`; .ci/run installs it when missing) driven by playwright-core, headless, with a
// fresh profile directory per test file. No browser is downloaded, and a missing Chromium fails the test with a
// message saying how to install it: these tests never skip.
//
// Each page gets a NIP-07 shim before any of its scripts run: window.nostr signs with a test key, in this process
// with nostr-tools (exposed to the page as bindings), as a signer extension would. Console errors and uncaught
// page errors are collected per page so that every test can check there were none.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { finalizeEvent, type EventTemplate } from 'nostr-tools/pure';
import { buildWebApp } from '../../scripts/build-web.js';
import type { Key } from './events.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots go (gitignored); kept after the run as test artifacts. */
const artifactsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web', 'artifacts');

const flags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Builds web/ into a temporary directory of this test file (for WEB_APP_DIR), removed at teardown. */
export async function buildWebAppForTest(t: Teardown): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nostrx-web-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return buildWebApp(dir);
}

/** Chromium with a fresh profile directory, closed and removed at teardown. */
export async function launchBrowser(t: Teardown): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install it with "apt-get update && apt-get install -y chromium" (the browser tests do not skip)`,
    );
  }
  const profile = mkdtempSync(path.join(tmpdir(), 'nostrx-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: flags,
    locale: 'en-US',
    timezoneId: 'UTC',
    viewport: { width: 1100, height: 900 },
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

export interface TestPage {
  readonly page: Page;
  /** Console errors and uncaught exceptions of this page so far. */
  readonly errors: string[];
  /** Events the shim signed for this page (a NIP-07 signer's prompts). */
  readonly signed: EventTemplate[];
}

export interface OpenOptions {
  /** The key of the page's NIP-07 signer; none: the page has no window.nostr. */
  readonly key?: Key;
  readonly viewport?: { width: number; height: number };
}

/** A new tab with the NIP-07 shim for `key` installed before the page's own scripts. */
export async function openPage(context: BrowserContext, opts: OpenOptions = {}): Promise<TestPage> {
  const page = await context.newPage();
  if (opts.viewport) await page.setViewportSize(opts.viewport);
  const errors: string[] = [];
  const signed: EventTemplate[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  const key = opts.key;
  if (key) {
    await page.exposeFunction('__testSignerPubkey', () => key.pk);
    await page.exposeFunction('__testSignerSign', (template: EventTemplate) => {
      signed.push(template);
      const e = finalizeEvent(
        { kind: template.kind, created_at: template.created_at, tags: template.tags, content: template.content },
        key.sk,
      );
      return {
        id: e.id,
        pubkey: e.pubkey,
        created_at: e.created_at,
        kind: e.kind,
        tags: e.tags,
        content: e.content,
        sig: e.sig,
      };
    });
    // A string: it runs in the page (this file is type-checked for Node, without the DOM's globals).
    await page.addInitScript(`window.nostr = {
      getPublicKey: () => window.__testSignerPubkey(),
      signEvent: (template) => window.__testSignerSign(template),
    };`);
  }
  return { page, errors, signed };
}

/** Saves a PNG of the page under test/web/artifacts (and returns its path). */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** The document is no wider than the window: nothing scrolls sideways. */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}

/** The session this tab keeps (sessionStorage), or null. */
export async function storedSession(page: Page): Promise<{ token: string; pubkey: string; sessionId: string } | null> {
  const raw = await page.evaluate<string | null>("sessionStorage.getItem('nostrx.session')");
  return raw ? (JSON.parse(raw) as { token: string; pubkey: string; sessionId: string }) : null;
}

/**
 * Form controls without an accessible name: an input or select neither inside a <label> nor named by aria-label
 * or aria-labelledby, a button or link without text. Returns a description of each.
 */
export async function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter((el) => {
      if (el.type === 'hidden') return false;
      if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
      if (el.matches('input, select, textarea')) return !el.closest('label') && !(el.id && document.querySelector('label[for="' + el.id + '"]'));
      return !el.textContent.trim();
    })
    .map((el) => el.outerHTML.slice(0, 120))`);
}

/** Nothing on the page says it is still loading. */
export async function settled(page: Page): Promise<void> {
  await eventually(
    async () => (await page.locator('[role="status"]', { hasText: /^Loading/ }).count()) === 0,
    'the page to finish loading',
  );
}

/** Retries `probe` until it returns true (or throws its last error after `timeoutMs`). */
export async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${JSON.stringify(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
