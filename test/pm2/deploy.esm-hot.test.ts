import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { DeploymentBody, Hotdeploy } from '../helpers/hotdeploy.js';
import { repoRoot } from '../helpers/release.js';

// ES module apps end to end: the deploy service with its PM2 agent, real bundles, real workers.
// PM2's workers run on the Node that runs the tests: a line with `module.registerHooks` swaps them
// hot, any other takes the reload path with reason esm-unsupported-node.

let hd: Hotdeploy;
let expressPort: number;
let fastifyPort: number;

beforeAll(async () => {
  hd = await startHotdeploy();
  // `import 'express'` walks up from the release to the data directory's node_modules (ES modules
  // ignore NODE_PATH): the repository's, outside every release, as an installed dependency would be.
  await symlink(path.join(repoRoot, 'node_modules'), path.join(hd.dataDir, 'node_modules'), 'dir');
  [expressPort, fastifyPort] = [await freePort(), await freePort()];
});

afterAll(async () => {
  await hd?.close();
});

const expressApp = (greeting: string): Record<string, string | object> => ({
  'package.json': { name: 'shop', version: '1.0.0', type: 'module', main: 'index.js', hotdeploy: { port: expressPort, instances: 2 } },
  'index.js': `import express from 'express';
import firstRouter from './router.js';
const app = express();
let router = firstRouter;
app.use((req, res, next) => router(req, res, next));
import.meta.hot?.accept('./router.js', (next) => {
  router = next.default;
});
export default app;
`,
  'router.js': `import express from 'express';
const router = express.Router();
router.get('/', (req, res) => res.json({ message: ${JSON.stringify(greeting)}, pid: process.pid }));
export default router;
`,
});

const fastifyApp = (greeting: string): Record<string, string | object> => ({
  'package.json': { name: 'api', version: '1.0.0', type: 'module', main: 'app.js', hotdeploy: { port: fastifyPort, instances: 1 } },
  'app.js': `import Fastify from 'fastify';
import { greeting } from './greeting.js';
const app = Fastify();
app.get('/', async () => ({ message: greeting, pid: process.pid }));
export default app;
`,
  'greeting.js': `export const greeting = ${JSON.stringify(greeting)};\n`,
});

function expectSwapped(deployment: DeploymentBody, workers: number): void {
  expect(deployment.status, deployment.reason).toBe('succeeded');
  if (esmHotSupported) {
    expect(deployment.workers.map((w) => w.outcome)).toEqual(Array(workers).fill('hot'));
  } else {
    expect(deployment.workers.map((w) => w.outcome)).toEqual(Array(workers).fill('reloaded'));
    expect(deployment.workers.every((w) => (w.reason ?? '').includes('esm-unsupported-node'))).toBe(true);
  }
}

describe('ES module apps under PM2', () => {
  it('an ESM Express app: a router change is taken by the entry\'s import.meta.hot.accept', async () => {
    const first = await push(hd, 'shop', '1.0.0', expressApp('hello andy'));
    expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
    const before = await pidsServing(expressPort, 2);
    expect(before.messages).toEqual(['hello andy']);

    const { deployment } = await push(hd, 'shop', '2.0.0', expressApp('hello again'));
    expectSwapped(deployment, 2);
    if (esmHotSupported) expect(deployment.workers[0]?.update).toMatchObject({ outdated: ['router.js'], accepted: ['index.js'] });
    const after = await pidsServing(expressPort, 2);
    expect(after.messages).toEqual(['hello again']);
    if (esmHotSupported) expect(after.pids).toEqual(before.pids);
  });

  it('an ESM fastify app: a change reaching the entry swaps the instance', async () => {
    const first = await push(hd, 'api', '1.0.0', fastifyApp('one'));
    expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
    const before = await pidsServing(fastifyPort, 1);
    expect(before.messages).toEqual(['one']);

    const { deployment } = await push(hd, 'api', '2.0.0', fastifyApp('two'));
    expectSwapped(deployment, 1);
    if (esmHotSupported) expect(deployment.workers[0]?.update).toMatchObject({ outdated: ['greeting.js'], disposed: ['app.js', 'greeting.js'], accepted: ['app.js'] });
    const after = await pidsServing(fastifyPort, 1);
    expect(after.messages).toEqual(['two']);
    if (esmHotSupported) expect(after.pids).toEqual(before.pids);
  });
});
