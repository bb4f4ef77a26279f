import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const entry = (v: string): string => `const fs = require('fs');\nmodule.exports = (req, res) => res.end('${v} ' + fs.readFileSync('data.txt', 'utf8'));\n`;

it('chdir: process.cwd() follows the current release, stays on an aborted update, and is restored by close', async () => {
  const start = process.cwd();
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': entry('v1'), 'data.txt': 'one' });
  const v2 = await writeRelease(root, { 'index.js': entry('v2'), 'data.txt': 'two' });
  const v3 = await writeRelease(root, { 'index.js': entry('v3') + "module.hot.decline();\n", 'data.txt': 'three' });
  const v4 = await writeRelease(root, { 'index.js': entry('v4') + "module.hot.decline();\n", 'data.txt': 'four' });
  const app = t.defer(await hostApp({ name: 'c', dir: v1, chdir: true }));
  const server = t.defer(await serve(app.handler));
  expect(process.cwd()).toBe(v1);
  expect(await server.get()).toBe('200 v1 one');
  await app.update(v2);
  expect(process.cwd()).toBe(v2);
  expect(await server.get()).toBe('200 v2 two');
  await app.update(v3);
  expect(process.cwd()).toBe(v3);
  expect((await app.update(v4)).outcome).toBe('declined');
  expect(process.cwd()).toBe(v3);
  await app.close();
  expect(process.cwd()).toBe(start);
});

it('leaves process.cwd() alone by default', async () => {
  const start = process.cwd();
  const root = await t.root();
  const app = t.defer(await hostApp({ name: 'c', dir: await writeRelease(root, { 'index.js': entry('v1') }) }));
  expect(process.cwd()).toBe(start);
  await app.close();
});

it('main: a process-mode entry runs as require.main', async () => {
  const root = await t.root();
  const prog = 'globalThis.__isMain = require.main === module;\n';
  t.defer(await hostApp({ name: 'm', dir: await writeRelease(root, { 'index.js': prog }), mode: 'process', main: true }));
  expect((globalThis as Record<string, unknown>).__isMain).toBe(true);
});

it('takes entry and mode from the release\'s hotdeploy settings, and swaps to a moved entry', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, {
    'package.json': { name: 'app', version: '1.0.0', hotdeploy: { entry: 'src/server.js' } },
    'src/server.js': "module.exports = (req, res) => res.end('server');",
  });
  const v2 = await writeRelease(root, {
    'package.json': { name: 'app', version: '1.0.1', hotdeploy: { entry: 'src/app.js' } },
    'src/app.js': "module.exports = (req, res) => res.end('app');",
  });
  const app = t.defer(await hostApp({ name: 'e', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 server');
  expect(await app.update(v2)).toMatchObject({ outcome: 'hot', accepted: ['src/app.js'] });
  expect(await server.get()).toBe('200 app');
});

it('makes an accept of a dependency that does not resolve fail the module with HOT_ERR_ACCEPT', async () => {
  const root = await t.root();
  const dir = await writeRelease(root, { 'index.js': "module.hot.accept('./nope', () => {});\nmodule.exports = (req, res) => res.end();" });
  await expect(hostApp({ name: 'x', dir })).rejects.toMatchObject({ code: 'HOT_ERR_ACCEPT' });
});

it('rejects invalid options with HOT_ERR_SETTINGS before loading anything', async () => {
  const root = await t.root();
  const dir = await writeRelease(root, { 'index.js': "globalThis.__loaded = true;\nmodule.exports = (req, res) => res.end();" });
  await expect(hostApp({ name: '', dir })).rejects.toMatchObject({ code: 'HOT_ERR_SETTINGS' });
  await expect(hostApp({ name: 'x', dir, mode: 'cluster' as 'process' })).rejects.toMatchObject({ code: 'HOT_ERR_SETTINGS' });
  await expect(hostApp({ name: 'x', dir, drainTimeoutMs: -1 })).rejects.toMatchObject({ code: 'HOT_ERR_SETTINGS' });
  expect((globalThis as Record<string, unknown>).__loaded).toBeUndefined();
  await expect(hostApp({ name: 'x', dir: `${root}/missing` })).rejects.toMatchObject({ code: 'HOT_ERR_MANIFEST' });
});
