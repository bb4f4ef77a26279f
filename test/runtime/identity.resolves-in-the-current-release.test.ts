import { rm } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour } from '../helpers/flavours.js';
import { cachedUnder, cleanupStack, moduleCache, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

// A module's identity is its path relative to the release root.
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
  // counter.js still runs the code it evaluated from v1 (its __dirname is there).
  expect(app.releasesInUse()).toEqual([v1, v2]);
  await rm(v1, { recursive: true });
  // The new index.js shares the unchanged counter.js instance (its state goes on), still cached
  // under the key it was loaded with; the lazy require loads late.js from the current release.
  expect(await server.get()).toBe('200 two 3');
  expect(moduleCache[`${v1}/counter.js`]).toBe(counter);
  expect(await server.get('/late')).toBe('200 late two');
  expect(cachedUnder(v1)).toEqual([`${v1}/counter.js`]);
  expect(cachedUnder(v2)).toEqual([`${v2}/index.js`, `${v2}/late.js`, `${v2}/msg.js`]);
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

it('maps a require of an absolute path built from an unchanged module\'s __dirname to the current release', async () => {
  const root = await t.root();
  const files = (text: string): Record<string, string> => ({
    'index.js': "const loader = require('./loader');\nconst msg = require('./msg');\nmodule.exports = (req, res) => res.end(msg + ' ' + loader.load());\n",
    'loader.js': "const path = require('path');\nexports.load = () => require(path.join(__dirname, 'lazy.js'));\n",
    'msg.js': `module.exports = ${JSON.stringify(text)};`,
    'lazy.js': `module.exports = ${JSON.stringify(`lazy ${text}`)};`,
  });
  const v1 = await writeRelease(root, files('one'));
  const v2 = await writeRelease(root, files('two'));
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  const result = await app.update(v2);
  // lazy.js was never loaded: only msg.js (and the entry it reaches) changed.
  expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'] });
  await rm(v1, { recursive: true });
  expect(await server.get()).toBe('200 two lazy two');
  expect(cachedUnder(v1)).toEqual([`${v1}/loader.js`]);
  expect(cachedUnder(v2)).toEqual([`${v2}/index.js`, `${v2}/lazy.js`, `${v2}/msg.js`]);
});

eachFlavour('a bare import of a node_modules package inside the release', (f) => {
  it('is noticed when it resolves to another file of the package now', async () => {
    const root = await t.root();
    const files = {
      'package.json': f.pkg(),
      'index.js': `${f.use('lib', 'lib')}\n${f.exportDefault('(req, res) => res.end(lib)')}\n`,
      'node_modules/lib/index.js': f.exportDefault("'index'"),
      'node_modules/lib/other.js': f.exportDefault("'other'"),
    };
    const v1 = await writeRelease(root, files);
    const v2 = await writeRelease(root, { ...files, 'node_modules/lib/package.json': { name: 'lib', main: 'other.js' } });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 index');
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['index.js'] });
    expect(await server.get()).toBe('200 other');
  });

  it('is noticed when a #subpath import resolves elsewhere after package.json "imports" changed', async () => {
    const root = await t.root();
    const files = (target: string): Record<string, string | object> => ({
      'package.json': f.pkg({ imports: { '#config': target } }),
      'index.js': `${f.use('config', '#config')}\n${f.exportDefault('(req, res) => res.end(config)')}\n`,
      'a.js': f.exportDefault("'a'"),
      'b.js': f.exportDefault("'b'"),
    });
    const app = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, files('./a.js')) }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 a');
    expect(await app.update(await writeRelease(root, files('./b.js')))).toMatchObject({ outcome: 'hot', outdated: ['index.js'] });
    expect(await server.get()).toBe('200 b');
  });
});
