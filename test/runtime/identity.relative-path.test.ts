import { rm } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cachedUnder, cleanupStack, moduleCache, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

// issue 2, item 6: identity is the path relative to the release root.
const files = (late: string, msg: string): Record<string, string> => ({
  'index.js': "const counter = require('./counter');\nconst msg = require('./msg');\nmodule.exports = (req, res) => res.end(req.url === '/late' ? counter.late() : `${msg} ${counter.hit()}`);\n",
  'counter.js': "let hits = 0;\nexports.hit = () => ++hits;\nexports.late = () => require('./late');\n",
  'msg.js': `module.exports = ${JSON.stringify(msg)};`,
  'late.js': `module.exports = ${JSON.stringify(late)};`,
});

it('keeps an unchanged module\'s instance and state across releases, and its lazy require yields the new release\'s file even after the old release is deleted', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, files('late one', 'one'));
  const v2 = await writeRelease(root, files('late two', 'two'));
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 one 1');
  expect(await server.get()).toBe('200 one 2');
  const counter = moduleCache[`${v1}/counter.js`];

  const result = await app.update(v2);
  // late.js changed but was never loaded: nothing to do for it.
  expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'] });
  await rm(v1, { recursive: true });
  expect(await server.get()).toBe('200 two 3');
  expect(moduleCache[`${v2}/counter.js`]).toBe(counter);
  expect(await server.get('/late')).toBe('200 late two');
  expect(cachedUnder(v1)).toEqual([]);
});

it('resolves a lazy require of old code still running after the update in the current release', async () => {
  const root = await t.root();
  const entry = (v: string): string => `exports.lazy = () => require('./late') + ' via ${v}';\nmodule.exports = Object.assign((req, res) => res.end(exports.lazy()), exports);\n`;
  const v1 = await writeRelease(root, { 'index.js': entry('v1'), 'late.js': "module.exports = 'late one';" });
  const v2 = await writeRelease(root, { 'index.js': entry('v2'), 'late.js': "module.exports = 'late two';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const oldEntry = moduleCache[`${v1}/index.js`]!.exports as { lazy: () => string };
  expect((await app.update(v2)).outcome).toBe('hot');
  await rm(v1, { recursive: true });
  expect(oldEntry.lazy()).toBe('late two via v1');
  expect(cachedUnder(v1)).toEqual([]);
  expect(cachedUnder(v2)).toEqual([`${v2}/index.js`, `${v2}/late.js`]);
});

it('treats a require that now resolves to another file as a change of the requiring module', async () => {
  const root = await t.root();
  const idx = "const config = require('./config');\nmodule.exports = (req, res) => res.end(config.name);\n";
  const v1 = await writeRelease(root, { 'index.js': idx, 'config/index.js': "exports.name = 'from dir';" });
  const v2 = await writeRelease(root, { 'index.js': idx, 'config/index.js': "exports.name = 'from dir';", 'config.js': "exports.name = 'from file';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 from dir');
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'hot', outdated: ['index.js'], disposed: ['index.js'] });
  expect(await server.get()).toBe('200 from file');
});

it('disposes a module gone from the new release', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': "const o = require('./old');\nmodule.exports = (req, res) => res.end(o);", 'old.js': "module.exports = 'old';" });
  const v2 = await writeRelease(root, { 'index.js': "module.exports = (req, res) => res.end('new');" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'hot', outdated: ['index.js', 'old.js'], disposed: ['index.js', 'old.js'] });
  expect(cachedUnder(v2)).toEqual([`${v2}/index.js`]);
});
