import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ask, handlerApp, pidsServing, underLoad } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';

// End to end through the service: an Express
// router case (hot), a decline (graceful reload with the chain as reason), a release that throws at
// start (rolled back, nothing reloaded), and a second app on the same daemon that none of it touches.

const NODE_MODULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules');

let hd: Hotdeploy;
let shopPort: number;
let apiPort: number;

/** An Express app whose routes live in router.js. */
function shop(version: string, greeting: string): Record<string, string | object> {
  return {
    // Express resolves from this repository's node_modules (NODE_PATH is read at process start).
    'package.json': { name: 'shop', version, main: 'index.js', hotdeploy: { port: shopPort, env: { NODE_PATH: NODE_MODULES } } },
    'index.js': `
const express = require('express');
const app = express();
app.use(require('./router.js'));
module.exports = app;
`,
    'router.js': `
const express = require('express');
const router = express.Router();
router.get('/', (req, res) => res.json({ message: ${JSON.stringify(greeting)}, pid: process.pid }));
module.exports = router;
`,
  };
}

/** message.js declines its own updates: any change to it takes the reload path. */
const declining = (text: string): string => `module.hot.decline();\nmodule.exports = ${JSON.stringify(text)};\n`;

beforeAll(async () => {
  hd = await startHotdeploy();
  [shopPort, apiPort] = [await freePort(), await freePort()];
  const [a, b] = await Promise.all([
    push(hd, 'shop', '1.0.0', shop('1.0.0', 'hello andy')),
    push(hd, 'api', '1.0.0', handlerApp({ name: 'api', version: '1.0.0', port: apiPort, messageJs: declining('one') })),
  ]);
  expect(a.deployment.status, a.deployment.reason).toBe('succeeded');
  expect(b.deployment.status, b.deployment.reason).toBe('succeeded');
});

afterAll(async () => {
  await hd?.close();
});

describe('fallback, rollback and isolation under PM2', () => {
  let shopWorkers: { pmId: number; pid: number | null }[] = [];

  it('serves a changed Express router.js hot, without a restart', async () => {
    const before = await pidsServing(shopPort, 2);
    expect(before.messages).toEqual(['hello andy']);
    const { deployment } = await push(hd, 'shop', '2.0.0', shop('2.0.0', 'hello again'));
    expect(deployment.status, deployment.reason).toBe('succeeded');
    expect(deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    expect(deployment.workers[0]?.update?.outdated).toContain('router.js');
    expect(await pidsServing(shopPort, 2)).toEqual({ pids: before.pids, messages: ['hello again'] });
    shopWorkers = (await appStatus(hd, 'shop')).workers.map((w) => ({ pmId: w.pmId, pid: w.pid }));
  });

  it('reloads on a decline, with the chain as the reason: new pids, new code, in-flight requests finish', async () => {
    const before = await pidsServing(apiPort, 2);
    const inFlight = [ask(apiPort, '/slow'), ask(apiPort, '/slow')];
    const { deployment } = await push(hd, 'api', '2.0.0', handlerApp({ name: 'api', version: '2.0.0', port: apiPort, messageJs: declining('two') }));
    expect(deployment.status, deployment.reason).toBe('succeeded');
    expect(deployment.hosts[0]?.path).toBe('reload');
    expect(deployment.workers.map((w) => [w.outcome, w.version])).toEqual([['reloaded', '2.0.0'], ['reloaded', '2.0.0']]);
    expect(deployment.workers[0]?.reason).toMatch(/declined: message\.js/);
    // Started on the old workers, answered by them (graceful shutdown) while the new ones took over.
    for (const answer of await Promise.all(inFlight)) expect(answer).toMatchObject({ message: 'one' });
    const after = await pidsServing(apiPort, 2);
    expect(after.messages).toEqual(['two']);
    expect(after.pids.filter((pid) => before.pids.includes(pid))).toEqual([]);
  });

  it('rolls back a release that throws at start; the previous one keeps serving, untouched', async () => {
    const before = await pidsServing(apiPort, 2);
    // Only the entry changes (message.js as in 2.0.0), so the hot update evaluates it and fails.
    const broken = handlerApp({ name: 'api', version: '3.0.0', port: apiPort, messageJs: declining('two'),
      indexJs: `throw new Error('boom at start');\n` });
    const { deployment } = await push(hd, 'api', '3.0.0', broken);
    expect(deployment.status).toBe('rolled-back');
    expect(deployment.reason).toMatch(/did not start in a trial run.*boom at start.*failed/);
    expect(deployment.workers.map((w) => [w.outcome, w.version])).toEqual([['rolled-back', '2.0.0'], ['rolled-back', '2.0.0']]);
    expect(await pidsServing(apiPort, 2)).toEqual({ pids: before.pids, messages: ['two'] });
    expect((await appStatus(hd, 'api')).current).toBe('2.0.0');
    // The failed update had moved each runtime onto 3.0.0 (minus the entry): they were moved back.
    for (let i = 0; i < 4; i++) expect((await ask(apiPort)).cwd).toMatch(/releases\/2\.0\.0$/);
  });

  it('serves every request of a keep-alive load loop during a fallback reload and a rolled-back push', async () => {
    const load = await underLoad(apiPort, 10, async () => {
      const reloaded = await push(hd, 'api', '5.0.0', handlerApp({ name: 'api', version: '5.0.0', port: apiPort, messageJs: declining('five') }));
      expect(reloaded.deployment.hosts[0]?.path).toBe('reload');
      const { deployment } = await push(hd, 'api', '6.0.0', handlerApp({ name: 'api', version: '6.0.0', port: apiPort, indexJs: `throw new Error('boom');\n` }));
      expect(deployment.status).toBe('rolled-back');
    });
    // Closing workers answer with `Connection: close` and cut only sockets idle for a while.
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(50);
    expect((await pidsServing(apiPort, 2)).messages).toEqual(['five']);
  });

  it('fails a first release that cannot start, and leaves nothing running for it', async () => {
    const badPort = await freePort();
    const { deployment } = await push(hd, 'bad', '1.0.0', handlerApp({ name: 'bad', version: '1.0.0', port: badPort, indexJs: `throw new Error('boom on first start');\n` }));
    expect(deployment.status).toBe('failed');
    expect(deployment.reason).toMatch(/boom on first start/);
    const status = await appStatus(hd, 'bad');
    expect(status.current).toBeNull();
    expect(status.workers).toEqual([]);
  });

  it('never touches the other app on the same daemon', async () => {
    const now = (await appStatus(hd, 'shop')).workers;
    expect(now.map((w) => ({ pmId: w.pmId, pid: w.pid }))).toEqual(shopWorkers);
    expect(now.every((w) => w.status === 'online' && w.version === '2.0.0')).toBe(true);
    expect((await ask(shopPort)).message).toBe('hello again');
  });
});
