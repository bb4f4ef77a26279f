import Module from 'node:module';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cachedUnder, cleanupStack, moduleCache, repoRoot, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
afterEach(t.run);

// The worked case of shared/seeds/000 (issue 2, item 12), written for hotdeploy: the entry mounts
// the router through a closure and accepts it, so a router change swaps only the router.
const index = `const express = require('express');
const app = express();
let router = require('./router');
app.use((req, res, next) => router(req, res, next));
if (module.hot) {
  module.hot.accept('./router', () => {
    router = require('./router');
  });
}
module.exports = app;
`;
const router = (text: string): string => `const express = require('express');
const router = express.Router();
router.get('/', (req, res) => res.send(${JSON.stringify(text)}));
module.exports = router;
`;

it('swaps an Express router mounted through a closure, keeping the entry and express itself', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': index, 'router.js': router('hello andy') }, { linkNodeModules: true });
  const v2 = await writeRelease(root, { 'index.js': index, 'router.js': router('hello again') }, { linkNodeModules: true });
  const app = t.defer(await hostApp({ name: 'express-app', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 hello andy');
  const entryBefore = moduleCache[`${v1}/index.js`];
  const expressFile = Object.keys(moduleCache).find((k) => k.startsWith(`${repoRoot}/node_modules/express/`));
  expect(expressFile).toBeDefined();
  const expressBefore = moduleCache[expressFile!];

  const result = await app.update(v2);

  expect(result).toMatchObject({ outcome: 'hot', outdated: ['router.js'], disposed: ['router.js'], accepted: ['index.js'] });
  expect(await server.get()).toBe('200 hello again');
  // The entry kept its instance (and its cache key, under the release it was evaluated from);
  // express was never evicted. (Identity checks, not toBe: printing an Express app on failure throws.)
  expect(moduleCache[`${v1}/index.js`] === entryBefore).toBe(true);
  expect(moduleCache[expressFile!] === expressBefore).toBe(true);
  expect(cachedUnder(v1)).toEqual([`${v1}/index.js`]);
  expect(cachedUnder(v2)).toEqual([`${v2}/router.js`]);
  // Node's resolution cache forgets the release the app left (swept after the update).
  const pathCache = (Module as unknown as { _pathCache: Record<string, string> })._pathCache;
  await waitFor('the path cache sweep', () => !Object.entries(pathCache).some(([k, v]) => k.includes(v1) || v.startsWith(v1)), 2000);
});

it('swaps the whole Express app when nothing accepts the router: the host accepts the entry', async () => {
  const root = await t.root();
  const plain = "const express = require('express');\nconst app = express();\napp.use(require('./router'));\nmodule.exports = app;\n";
  const v1 = await writeRelease(root, { 'index.js': plain, 'router.js': router('one') }, { linkNodeModules: true });
  const v2 = await writeRelease(root, { 'index.js': plain, 'router.js': router('two') }, { linkNodeModules: true });
  const app = t.defer(await hostApp({ name: 'express-app', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 one');
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'hot', disposed: ['index.js', 'router.js'], accepted: ['index.js'] });
  expect(await server.get()).toBe('200 two');
});
