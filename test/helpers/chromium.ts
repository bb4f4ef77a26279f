import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tempDir } from './tmp.js';

/** Debian's chromium (or HOTDEPLOY_CHROMIUM), headless, without a sandbox, as CI runs it. */
export const CHROMIUM = process.env.HOTDEPLOY_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A fresh browser with its own profile, or why none can run here. */
export async function launchChromium(): Promise<{ context: BrowserContext; cleanup: () => Promise<void> } | string> {
  if (!existsSync(CHROMIUM)) return `no browser at ${CHROMIUM} (apt-get install chromium, or set HOTDEPLOY_CHROMIUM)`;
  const profile = await tempDir('hd-chromium-');
  try {
    const context = await chromium.launchPersistentContext(profile.dir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
    return { context, cleanup: async () => { await context.close(); await profile.cleanup(); } };
  } catch (err) {
    await profile.cleanup();
    return `${CHROMIUM} does not start here: ${(err as Error).message.split('\n')[0]}`;
  }
}

/**
 * A new page signed in to the dashboard at `url` with `token`, once `app`'s row shows and the event
 * stream is live. Page errors and console errors (CSP refusals among them) go to `problems`.
 */
export async function signIn(context: BrowserContext, url: string, token: string, app: string, problems: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  // The console names no URL for a failed load: the response does.
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`response: ${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  await page.goto(`${url}/`);
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector(`#apps tr[data-app="${app}"]`, { timeout: 15_000 });
  await page.waitForSelector('#live[data-state="live"]', { timeout: 15_000 });
  return page;
}
