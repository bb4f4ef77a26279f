import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../services/server/index.js';
import { handlerApp } from '../helpers/apps.js';
import { makeBundle } from '../helpers/bundles.js';
import { launchChromium, signIn } from '../helpers/chromium.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

// A canary push in the dashboard (Debian's chromium, the real service and PM2): the deployment's row
// says which phase the canary is in while it runs, live, and its details list every phase once done.

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output/dashboard');
const ADMIN = 'dashboard-canary-token-0123456789';

const probe = await launchChromium();
const unavailable = typeof probe === 'string' ? probe : undefined;
if (typeof probe !== 'string') await probe.cleanup();
if (unavailable) console.warn(`skipping the dashboard canary test: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('canary phases in the dashboard', () => {
  let server: RunningServer;
  let browser: { context: BrowserContext; cleanup: () => Promise<void> };
  const cleanups: (() => Promise<void>)[] = [];
  const problems: string[] = [];
  let port: number;

  async function push(version: string, message: string, query = ''): Promise<{ id: string; status: string }> {
    const res = await fetch(`${server.url}/v1/apps/birds/releases/${version}${query}`, {
      method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/gzip' },
      body: await makeBundle(handlerApp({ name: 'birds', version, port, message, instances: 3 })),
    });
    expect(res.status).toBe(query.includes('wait=false') ? 202 : 201);
    return ((await res.json()) as { deployment: { id: string; status: string } }).deployment;
  }

  beforeAll(async () => {
    const home = await pm2Home();
    cleanups.push(home.cleanup);
    const data = await tempDir('hd-dashboard-canary-');
    cleanups.push(data.cleanup);
    server = await startServer({ dataDir: data.dir, port: 0, logger: false, pm2Home: home.home, tokens: [{ name: 'admin', token: ADMIN }] });
    port = await freePort();
    expect((await push('1.0.0', 'one')).status).toBe('succeeded');
    browser = await launchChromium() as typeof browser;
    await mkdir(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.cleanup();
    await server?.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('shows the phase a running canary is in, then every phase with its figures', async () => {
    const page = await signIn(browser.context, server.url, ADMIN, 'birds', problems);
    const queued = await push('2.0.0', 'two', '?canary=1&canaryWatchMs=10000&wait=false');
    const row = page.locator(`#deployments tr[data-id="${queued.id}"]`);
    // While the watch runs, the row says so (from the agent's phase events, without a reload); the
    // watch is long enough for a page on a loaded machine to see it.
    await row.locator('.canary:has-text("canary 1 · watch…")').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(SHOTS, 'canary-watching.png'), fullPage: true });
    await page.locator(`#deployments tr[data-id="${queued.id}"][data-status="succeeded"]`).waitFor({ timeout: 30_000 });
    await row.locator('button').first().click();
    const phases = page.locator('#deployments tr.details .phases');
    expect(await phases.locator('h3').textContent()).toBe('Canary 1, watched 10.0 s');
    expect(await phases.locator('tr[data-phase]').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-phase'), r.querySelector('.badge')?.textContent])))
      .toEqual([['canary', 'passed'], ['watch', 'passed'], ['rest', 'passed']]);
    expect(await phases.locator('tr[data-phase] .b-passed').count()).toBe(3);
    expect(await phases.locator('tr[data-phase="watch"]').textContent()).toMatch(/\d+ probes, 0 errors in \d+ answers/);
    await page.screenshot({ path: path.join(SHOTS, 'canary-phases.png'), fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });
});
