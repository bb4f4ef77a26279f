import Module from 'node:module';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
afterEach(t.run);

// `hotdeploy plan` dry-runs bundles staged in a fresh directory each time, in long-lived workers:
// what a plan resolved from that directory must not stay in Node's path cache (it would grow with
// every plan, as it would with every release without the sweep after an update).
const pathCache = (Module as unknown as { _pathCache: Record<string, string> })._pathCache;
const mentions = (dir: string): string[] => Object.entries(pathCache).filter(([k, v]) => k.includes(dir) || v.startsWith(dir)).map(([k]) => k);

const files = (message: string): Record<string, string> => ({
  'index.js': "const lib = require('lib-a');\nconst msg = require('./msg');\nmodule.exports = (req, res) => res.end(lib + msg);\n",
  'msg.js': `module.exports = ${JSON.stringify(message)};\n`,
  'node_modules/lib-a/index.js': "module.exports = 'a:';\n",
});

it('plan() leaves no path-cache entry for the directory it planned against', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, files('one'));
  const app = t.defer(await hostApp({ name: 'planned', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  // A file added under node_modules makes the plan re-resolve bare requires from the staged directory (diff.ts).
  const staged = await writeRelease(root, { ...files('two'), 'node_modules/lib-b/index.js': '' });
  expect(await app.plan(staged)).toMatchObject({ outcome: 'hot', outdated: ['msg.js'] });
  await waitFor('the path cache sweep of the planned directory', () => mentions(staged).length === 0, 2000);
  expect(mentions(v1).length).toBeGreaterThan(0);
  expect(await server.get()).toBe('200 a:one');
});
