import type { Server } from 'node:http';
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

describe('hostApp in process mode, hot path', () => {
  it('applies a change a module accepts, without touching the entry', async () => {
    const root = await setup();
    const prog = `let msg = require('./msg');
globalThis.__procEvaluations = (globalThis.__procEvaluations || 0) + 1;
globalThis.__procRead = () => msg.text;
module.hot.accept('./msg', () => { msg = require('./msg'); });
`;
    const v1 = await writeRelease(root, { 'index.js': prog, 'msg.js': "exports.text = 'one';" });
    const v2 = await writeRelease(root, { 'index.js': prog, 'msg.js': "exports.text = 'two';" });
    const app = track(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    const g = globalThis as unknown as { __procEvaluations: number; __procRead: () => string };
    expect(g.__procRead()).toBe('one');
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', disposed: ['msg.js'], accepted: ['index.js'] });
    expect(g.__procRead()).toBe('two');
    expect(g.__procEvaluations).toBe(1);
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

describe('a self-accepting entry', () => {
  it('is required again in process mode, its dispose closing what the old version opened', async () => {
    const root = await setup();
    const prog = (v: string): string => `const http = require('http');
const server = http.createServer((req, res) => res.end('${v}'));
server.listen(0);
globalThis.__procServer = server;
module.hot.accept();
module.hot.dispose(() => server.close());
`;
    const v1 = await writeRelease(root, { 'index.js': prog('one') });
    const v2 = await writeRelease(root, { 'index.js': prog('two') });
    const app = track(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    const g = globalThis as unknown as { __procServer: Server };
    const first = g.__procServer;
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', disposed: ['index.js'], accepted: ['index.js'] });
    expect(g.__procServer).not.toBe(first);
    expect(first.listening).toBe(false);
    g.__procServer.close();
  });

  it('is re-evaluated by the host in handler mode and its new handler serves', async () => {
    const root = await setup();
    const v1 = await writeRelease(root, { 'index.js': "module.hot.accept();\nmodule.exports = (req, res) => res.end('one');" });
    const v2 = await writeRelease(root, { 'index.js': "module.hot.accept();\nmodule.exports = (req, res) => res.end('two');" });
    const app = track(await hostApp({ name: 'a', dir: v1 }));
    const server = await serve(app.handler);
    cleanups.push(server.close);
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
    expect(await server.get()).toBe('200 two');
  });
});

describe('the update queue', () => {
  it('applies concurrent updates one at a time, in call order', async () => {
    const root = await setup();
    const dirs = await Promise.all(['one', 'two', 'three'].map((text) => writeRelease(root, { 'index.js': entry, 'msg.js': `exports.text = '${text}';` })));
    const app = track(await hostApp({ name: 'a', dir: dirs[0]! }));
    const server = await serve(app.handler);
    cleanups.push(server.close);
    const [second, third] = await Promise.all([app.update(dirs[1]!), app.update(dirs[2]!)]);
    expect(second).toMatchObject({ outcome: 'hot', from: dirs[0], to: dirs[1] });
    expect(third).toMatchObject({ outcome: 'hot', from: dirs[1], to: dirs[2] });
    expect(await server.get()).toBe('200 three');
  });
});
