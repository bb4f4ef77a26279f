import { afterEach, describe, expect, it } from 'vitest';
import { hostApp, type HostedApp } from '../../agent/index.js';
import { cachedUnder, moduleCache, serve, writeRelease } from '../helpers/release.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<string> {
  const { dir, cleanup } = await tempDir();
  cleanups.push(cleanup);
  return dir;
}

function track(app: HostedApp): HostedApp {
  cleanups.push(() => app.close());
  return app;
}

const entry = "const msg = require('./msg');\nmodule.exports = (req, res) => res.end(msg.text);\n";

describe('hostApp in handler mode', () => {
  it('serves the entry\'s handler and swaps it when a module the entry requires changes', async () => {
    const root = await setup();
    const v1 = await writeRelease(root, { 'index.js': entry, 'msg.js': "exports.text = 'one';" });
    const v2 = await writeRelease(root, { 'index.js': entry, 'msg.js': "exports.text = 'two';" });
    const app = track(await hostApp({ name: 'a', dir: v1 }));
    const server = await serve(app.handler);
    cleanups.push(server.close);
    expect(await server.get()).toBe('200 one');

    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'], accepted: ['index.js'], to: v2 });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(app.dir).toBe(v2);
    expect(await server.get()).toBe('200 two');
  });

  it('reports unchanged when no loaded module differs, and still moves to the new release', async () => {
    const root = await setup();
    const v1 = await writeRelease(root, { 'index.js': entry, 'msg.js': "exports.text = 'one';" });
    const v2 = await writeRelease(root, { 'index.js': entry, 'msg.js': "exports.text = 'one';", 'unused.js': 'module.exports = 1;' });
    const app = track(await hostApp({ name: 'a', dir: v1 }));
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'unchanged', outdated: [], disposed: [] });
    expect(app.dir).toBe(v2);
    expect(moduleCache[`${v2}/msg.js`]).toBeDefined();
    expect(moduleCache[`${v1}/msg.js`]).toBeUndefined();
  });
});

describe('hostApp in process mode', () => {
  it('runs the entry as a program and reports a change reaching it as unaccepted, keeping the old code', async () => {
    const root = await setup();
    const prog = "const msg = require('./msg');\nglobalThis.__procMsg = msg.text;\n";
    const v1 = await writeRelease(root, { 'index.js': prog, 'msg.js': "exports.text = 'one';" });
    const v2 = await writeRelease(root, { 'index.js': prog, 'msg.js': "exports.text = 'two';" });
    const app = track(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    expect((globalThis as Record<string, unknown>).__procMsg).toBe('one');
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'unaccepted', chain: ['msg.js', 'index.js'] });
    expect(result.reason).toContain('Update propagation: msg.js -> index.js');
    expect(app.status()).toBe('abort');
    expect(app.dir).toBe(v1);
    expect(moduleCache[`${v1}/msg.js`]).toBeDefined();
  });
});

describe('close', () => {
  it('evicts every module of the app from require.cache', async () => {
    const root = await setup();
    const v1 = await writeRelease(root, { 'index.js': entry, 'msg.js': "exports.text = 'one';" });
    const app = await hostApp({ name: 'a', dir: v1 });
    expect(moduleCache[`${v1}/msg.js`]).toBeDefined();
    await app.close();
    expect(cachedUnder(v1)).toEqual([]);
    await expect(app.update(v1)).rejects.toMatchObject({ code: 'HOT_ERR_CLOSED' });
  });
});
