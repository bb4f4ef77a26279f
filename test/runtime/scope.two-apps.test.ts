import Module from 'node:module';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cachedUnder, cleanupStack, moduleCache, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const files = (text: string): Record<string, string> => ({
  'index.js': "const msg = require('./msg');\nmodule.exports = (req, res) => res.end(msg);\n",
  'msg.js': `module.exports = ${JSON.stringify(text)};`,
});

it('hosts two apps with the same module paths in one process independently', async () => {
  const rootA = await t.root();
  const rootB = await t.root();
  const a1 = await writeRelease(rootA, files('a one'));
  const a2 = await writeRelease(rootA, files('a two'));
  const b1 = await writeRelease(rootB, files('b one'));
  const a = t.defer(await hostApp({ name: 'a', dir: a1 }));
  const b = await hostApp({ name: 'b', dir: b1 });
  const serverA = t.defer(await serve(a.handler));
  const serverB = t.defer(await serve(b.handler));
  const outside = Object.keys(moduleCache).filter((k) => !k.startsWith(a1) && !k.startsWith(b1));
  const bModules = cachedUnder(b1).map((k) => moduleCache[k]);

  expect((await a.update(a2)).outcome).toBe('hot');
  expect(await serverA.get()).toBe('200 a two');
  expect(await serverB.get()).toBe('200 b one');
  // Only app a's modules moved; b's instances and everything outside both apps are untouched.
  expect(cachedUnder(b1).map((k) => moduleCache[k])).toEqual(bModules);
  for (const key of outside) expect(moduleCache[key], key).toBeDefined();

  await b.close();
  expect(cachedUnder(b1)).toEqual([]);
  expect(cachedUnder(a2)).toEqual([`${a2}/index.js`, `${a2}/msg.js`]);
  // App a keeps working, hooks included, after b closed.
  const a3 = await writeRelease(rootA, files('a three'));
  expect((await a.update(a3)).outcome).toBe('hot');
  expect(await serverA.get()).toBe('200 a three');
});

it('refuses to host a release directory another app already hosts', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, files('one'));
  t.defer(await hostApp({ name: 'a', dir: v1 }));
  await expect(hostApp({ name: 'b', dir: v1 })).rejects.toMatchObject({ code: 'HOT_ERR_ALREADY_HOSTED' });
});

it('never evicts modules required from outside the release (a symlinked node_modules)', async () => {
  const root = await t.root();
  const entry = "const express = require('express');\nconst msg = require('./msg');\nconst app = express();\napp.get('/', (req, res) => res.send(msg));\nmodule.exports = app;\n";
  const v1 = await writeRelease(root, { 'index.js': entry, 'msg.js': "module.exports = 'one';" }, { linkNodeModules: true });
  const v2 = await writeRelease(root, { 'index.js': entry, 'msg.js': "module.exports = 'two';" }, { linkNodeModules: true });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const before = new Map(Object.entries(moduleCache).filter(([k]) => !k.startsWith(v1)));
  expect([...before.keys()].some((k) => k.includes('/node_modules/express/'))).toBe(true);
  await app.update(v2);
  await app.close();
  for (const [key, mod] of before) expect(moduleCache[key], key).toBe(mod);
  expect(typeof (Module as unknown as { _load: unknown })._load).toBe('function');
});
