import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { healthChecks, readManifest } from '../agent/manifest.js';
import { tempDir, writeTree } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('readManifest', () => {
  it('defaults to handler mode and the main entry', async () => {
    await writeTree(dir, { 'package.json': { name: 'a', version: '1.0.0', main: 'server' }, 'server/index.js': '' });
    const m = await readManifest(dir);
    expect(m).toMatchObject({ name: 'a', version: '1.0.0', entry: 'server/index.js', mode: 'handler', esm: false });
  });

  it('lets hotdeploy.json override package.json settings', async () => {
    await writeTree(dir, {
      'package.json': { hotdeploy: { mode: 'handler', port: 3000, entry: 'a.js' } },
      'hotdeploy.json': { mode: 'process', instances: 3 },
      'a.js': '',
    });
    expect(await readManifest(dir)).toMatchObject({ entry: 'a.js', mode: 'process', port: 3000, instances: 3 });
  });

  it('marks ESM apps', async () => {
    await writeTree(dir, { 'package.json': { type: 'module' }, 'index.js': '' });
    expect((await readManifest(dir)).esm).toBe(true);
  });

  it.each([
    ['no package.json', {}, 'HOT_ERR_MANIFEST'],
    ['package.json not JSON', { 'package.json': '{nope' }, 'HOT_ERR_MANIFEST'],
    ['package.json an array', { 'package.json': '[]' }, 'HOT_ERR_MANIFEST'],
    ['missing entry', { 'package.json': { main: 'gone.js' } }, 'HOT_ERR_ENTRY'],
    ['entry outside the release', { 'package.json': { main: '../x.js' } }, 'HOT_ERR_ENTRY'],
    ['bad mode', { 'package.json': { hotdeploy: { mode: 'fork' } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
    ['bad port', { 'package.json': { hotdeploy: { port: 70000 } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
    ['bad env', { 'package.json': { hotdeploy: { env: { A: 1 } } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
  ])('rejects %s with a stable code', async (_name, files, code) => {
    await writeTree(dir, files as Record<string, string | object>);
    await expect(readManifest(dir)).rejects.toMatchObject({ code });
  });
});

describe('readManifest: entry shapes, ports and health', () => {
  it('tells a fastify-cli app by its start script: entry, export, port and the options it honours', async () => {
    await writeTree(dir, {
      'package.json': { scripts: { start: 'FOO=1 fastify start -l info -o -x /api -T 20000 --body-limit 1024 -w --address 0.0.0.0 app.js -- --answer 42 --flag' } },
      'app.js': '',
    });
    expect(await readManifest(dir)).toMatchObject({
      entry: 'app.js', export: 'fastify-plugin', port: 3000,
      fastify: { file: 'app.js', logLevel: 'info', options: true, prefix: '/api', pluginTimeout: 20000, bodyLimit: 1024,
        pluginOptions: { answer: '42', flag: true }, ignored: ['--watch', '--address'] },
    });
  });

  it('takes the port from `fastify start -p`, else FASTIFY_PORT or PORT in hotdeploy.env, and hotdeploy.port over all', async () => {
    await writeTree(dir, { 'package.json': { main: 'app.js', scripts: { start: 'fastify start -p 4100 app.js' } }, 'app.js': '' });
    expect((await readManifest(dir)).port).toBe(4100);
    await writeTree(dir, { 'package.json': { main: 'app.js', scripts: { start: 'fastify start app.js' }, hotdeploy: { env: { FASTIFY_PORT: '4200' } } } });
    expect((await readManifest(dir)).port).toBe(4200);
    await writeTree(dir, { 'package.json': { main: 'app.js', scripts: { start: 'fastify start -p 4100 app.js' }, hotdeploy: { port: 4300 } } });
    expect((await readManifest(dir)).port).toBe(4300);
  });

  it('does not take a script that starts another file, nor one that is not fastify start', async () => {
    await writeTree(dir, { 'package.json': { main: 'index.js', scripts: { start: 'fastify start server.js' } }, 'index.js': '', 'server.js': '' });
    expect(await readManifest(dir)).toMatchObject({ export: 'auto', port: undefined });
    expect((await readManifest(dir)).fastify).toBeUndefined();
    await writeTree(dir, { 'package.json': { main: 'index.js', scripts: { start: 'node ./bin/www' } } });
    expect((await readManifest(dir)).export).toBe('auto');
  });

  it('says how to name the entry when package.json has no main', async () => {
    await writeTree(dir, { 'package.json': { scripts: { start: 'node ./bin/www' } }, 'app.js': '' });
    await expect(readManifest(dir)).rejects.toMatchObject({ code: 'HOT_ERR_ENTRY', message: expect.stringContaining('"hotdeploy": { "entry": "app.js" }') });
  });

  it('fills the health defaults, and takes false', async () => {
    await writeTree(dir, { 'package.json': { main: 'index.js' }, 'index.js': '' });
    expect((await readManifest(dir)).health).toEqual({ path: '/', timeoutMs: 5000, windowMs: 30000, threshold: 5, errorRate: 0.1 });
    await writeTree(dir, { 'package.json': { main: 'index.js', hotdeploy: { health: { path: '/healthz', expect: 204, windowMs: 0 } } } });
    expect((await readManifest(dir)).health).toMatchObject({ path: '/healthz', expect: [204], windowMs: 0 });
    await writeTree(dir, { 'package.json': { main: 'index.js', hotdeploy: { health: false } } });
    expect((await readManifest(dir)).health).toBe(false);
  });

  it('reads the app\'s default canary: a count, a percentage, an object with its watch; 0 is none', async () => {
    const canaryOf = async (canary: unknown): Promise<unknown> => {
      await writeTree(dir, { 'package.json': { main: 'index.js', hotdeploy: { canary } }, 'index.js': '' });
      return (await readManifest(dir)).canary;
    };
    expect(await canaryOf(2)).toEqual({ size: { count: 2 } });
    expect(await canaryOf('25%')).toEqual({ size: { percent: 25 } });
    expect(await canaryOf({ size: '10%', watchMs: 60000 })).toEqual({ size: { percent: 10 }, watchMs: 60000 });
    expect(await canaryOf(0)).toBeUndefined();
  });

  it.each([
    ['an unknown export', { export: 'express' }],
    ['health not an object', { health: 'yes' }],
    ['a health path without /', { health: { path: 'health' } }],
    ['a health status out of range', { health: { expect: [700] } }],
    ['an unknown health key', { health: { retries: 3 } }],
    ['an errorRate above 1', { health: { errorRate: 2 } }],
    ['a negative window', { health: { windowMs: -1 } }],
    ['a canary that is no size', { canary: 'half' }],
    ['a canary over 100%', { canary: '150%' }],
    ['a canary watch under 100 ms', { canary: { size: 1, watchMs: 10 } }],
    ['an unknown canary key', { canary: { size: 1, hosts: 2 } }],
  ])('rejects %s with HOT_ERR_SETTINGS', async (_name, hotdeploy) => {
    await writeTree(dir, { 'package.json': { main: 'index.js', hotdeploy }, 'index.js': '' });
    await expect(readManifest(dir)).rejects.toMatchObject({ code: 'HOT_ERR_SETTINGS' });
  });
});

describe('healthChecks', () => {
  it('gives the probe and the window the agent asks for, none with health false, the defaults for older manifests', () => {
    expect(healthChecks({ health: { path: '/h', expect: [200], timeoutMs: 100, windowMs: 0, threshold: 1, errorRate: 0 } }))
      .toEqual({ probe: { path: '/h', expect: [200], timeoutMs: 100 } });
    expect(healthChecks({ health: false })).toEqual({});
    expect(healthChecks({})).toEqual({ probe: { path: '/', timeoutMs: 5000 }, window: { windowMs: 30000, threshold: 5, errorRate: 0.1 } });
  });
});
