import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../services/server/index.js';
import { handlerApp } from '../helpers/apps.js';
import { makeBundle } from '../helpers/bundles.js';
import { pm2Home } from '../helpers/pm2.js';
import { launchChromium as launch, signIn as openSignedIn } from '../helpers/chromium.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the real
// service and PM2: a push shows up live, rollback is clicked and confirmed, a failure reason full of
// markup shows as text, and a read-only token sees no buttons. Screenshots go to test-output/.

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output/dashboard');
const ADMIN = 'dashboard-admin-token-0123456789';
const READER = 'dashboard-reader-token-0123456789';
/** A token name is the operator's free text: it shows as text too. */
const READER_NAME = 'reader <img src=x onerror="window.__xss=3">';
/** What a failing release throws: it reaches the deployment's reason and the release's bad reason. */
/** The current version's cell of the app's row. */
const CURRENT = '#apps tr[data-app="demo"] td:nth-child(2)';
const HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

const probe = await launch();
const unavailable = typeof probe === 'string' ? probe : undefined;
if (typeof probe !== 'string') await probe.cleanup();
if (unavailable) console.warn(`skipping the dashboard browser test: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('the dashboard in chromium', () => {
  let server: RunningServer;
  let browser: { context: BrowserContext; cleanup: () => Promise<void> };
  const cleanups: (() => Promise<void>)[] = [];
  let port: number;
  /** Page errors, and console errors such as CSP refusals: the page must cause none. */
  const problems: string[] = [];

  async function api(method: string, pathname: string, body?: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${server.url}${pathname}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/gzip' } : {}) }, ...(body ? { body } : {}),
    });
    return { status: res.status, json: await res.json() as Record<string, unknown> };
  }

  async function push(version: string, options: { message: string; indexJs?: string }): Promise<Record<string, unknown>> {
    const files = handlerApp({ name: 'demo', version, port, message: options.message, ...(options.indexJs ? { indexJs: options.indexJs } : {}) });
    const res = await api('PUT', `/v1/apps/demo/releases/${version}`, await makeBundle(files));
    expect(res.status).toBe(201);
    return res.json.deployment as Record<string, unknown>;
  }

  const signIn = (token: string): Promise<Page> => openSignedIn(browser.context, server.url, token, 'demo', problems);

  const current = async (): Promise<unknown> => (await api('GET', '/v1/apps/demo')).json.current;

  beforeAll(async () => {
    const home = await pm2Home();
    cleanups.push(home.cleanup);
    const data = await tempDir('hd-dashboard-');
    cleanups.push(data.cleanup);
    server = await startServer({
      dataDir: data.dir, port: 0, logger: false, pm2Home: home.home,
      tokens: [{ name: 'admin', token: ADMIN }, { name: READER_NAME, token: READER, actions: ['read'] }],
    });
    port = await freePort();
    expect((await push('1.0.0', { message: 'one' })).status).toBe('succeeded');
    browser = await launch() as typeof browser;
    await mkdir(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.cleanup();
    await server?.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('shows a push live, rolls back on a confirmed click, and keeps the token out of URLs and cookies', async () => {
    const page = await signIn(ADMIN);
    expect(await page.textContent(CURRENT)).toBe('1.0.0');
    expect(page.url()).toBe(`${server.url}/`);
    expect(await page.evaluate('[sessionStorage.getItem("hotdeploy.token"), document.cookie]')).toEqual([ADMIN, '']);
    // A mark on the window: the page is never reloaded, the rows change in place.
    await page.evaluate('window.mark = 42');

    const pushed = await push('2.0.0', { message: 'two' });
    expect(pushed.status).toBe('succeeded');
    const row = page.locator(`#deployments tr[data-id="${String(pushed.id)}"][data-status="succeeded"]`);
    await row.waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toContain('1.0.0 → 2.0.0');
    await expect.poll(() => page.textContent(CURRENT), { timeout: 15_000 }).toBe('2.0.0');
    expect(await page.evaluate('window.mark')).toBe(42);
    await row.locator('button').first().click();
    expect(await page.locator('#deployments tr.details').textContent()).toMatch(/hot.*hot/s);

    // Cancel changes nothing; confirming rolls back through the API.
    await page.click('#apps tr[data-app="demo"] button:has-text("Roll back")');
    await page.click('#confirm-cancel');
    expect(await page.locator('#confirm').isVisible()).toBe(false);
    expect(await current()).toBe('2.0.0');
    await page.click('#apps tr[data-app="demo"] button:has-text("Roll back")');
    expect(await page.textContent('#confirm-text')).toBe('Roll demo back from 2.0.0 to its previous good release?');
    await page.click('#confirm-ok');
    await waitFor('the API to report 1.0.0 current', async () => (await current()) === '1.0.0', 20_000);
    await page.locator('#deployments tr[data-status="succeeded"]:has-text("rollback")').waitFor({ timeout: 15_000 });
    await expect.poll(() => page.textContent(CURRENT), { timeout: 15_000 }).toBe('1.0.0');
    expect(await page.textContent('#agents')).toContain('in-process');
    await page.screenshot({ path: path.join(SHOTS, 'live-rollback.png'), fullPage: true });
    expect(await page.evaluate('window.mark')).toBe(42);
    await page.close();
  });

  it('shows a failure reason full of markup as text; nothing in it runs', async () => {
    const page = await signIn(ADMIN);
    const failed = await push('3.0.0', { message: 'one', indexJs: `throw new Error(${JSON.stringify(HOSTILE)});\n` });
    expect(failed.status).toBe('rolled-back');
    const row = page.locator(`#deployments tr[data-id="${String(failed.id)}"][data-status="rolled-back"]`);
    await row.waitFor({ timeout: 15_000 });
    expect(await row.locator('td.reason').textContent()).toContain(HOSTILE);
    await page.waitForSelector('#releases tr[data-version="3.0.0"] .b-bad', { timeout: 15_000 });
    expect(await page.textContent('#releases tr[data-version="3.0.0"] td.reason')).toContain(HOSTILE);
    // The markup stayed text: no element came of it, and its handlers never ran.
    expect(await page.locator('#board img, #board script').count()).toBe(0);
    expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
    await page.screenshot({ path: path.join(SHOTS, 'escaped-failure.png'), fullPage: true });
    await page.close();
  });

  it('a read-only token sees everything and no button that acts; the tab keeps the token until it is forgotten', async () => {
    const page = await signIn(READER);
    await page.waitForSelector('#releases tr[data-version="1.0.0"]', { timeout: 15_000 });
    expect(await page.locator('#board button:has-text("Roll back"), #board button:has-text("Activate")').count()).toBe(0);
    expect(await page.textContent('#who')).toContain(READER_NAME);
    expect(await page.locator('header img, #board img').count()).toBe(0);
    expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
    await page.screenshot({ path: path.join(SHOTS, 'read-only.png'), fullPage: true });
    // The tab keeps the token across a reload; "Forget token" drops it.
    await page.reload();
    await page.waitForSelector('#apps tr[data-app="demo"]', { timeout: 15_000 });
    await page.click('#sign-out');
    expect(await page.locator('#login').isVisible()).toBe(true);
    expect(await page.locator('#board').isVisible()).toBe(false);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.reload();
    await page.waitForSelector('#token', { state: 'visible', timeout: 15_000 });
    await page.close();
    expect(problems).toEqual([]);
  });
});
