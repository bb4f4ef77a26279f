import type { Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { CJS, eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cachedUnder, cleanupStack, moduleCache, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: unknown[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

/** index.js serves msg.js's text and counter.js's count; each module logs its evaluation. */
const app = (f: Flavour, text: string, extra: Record<string, string> = {}): Record<string, string | object> => ({
  'package.json': f.pkg(),
  'index.js': `${f.use('msg', './msg.js')}\n${f.use('counter', './counter.js')}\nglobalThis.log.push('index');
${f.exportDefault("(req, res) => res.end(msg + ' ' + counter())")}\n`,
  'msg.js': f.exportDefault(JSON.stringify(text)),
  'counter.js': `let n = 0;\nglobalThis.log.push('counter');\n${f.exportDefault('() => ++n')}\n`,
  ...extra,
});

eachFlavour('hostApp in handler mode', (f) => {
  it('serves the entry\'s handler and swaps it when a module the entry imports changes; an unchanged module keeps its instance', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, app(f, 'one'));
    const v2 = await writeRelease(root, app(f, 'two'));
    const hosted = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 one 1');

    const result = await hosted.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'], accepted: ['index.js'], to: v2 });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(hosted.dir).toBe(v2);
    expect(await server.get()).toBe('200 two 2');
    expect(g.log).toEqual(['counter', 'index', 'index']);
    expect(hosted.releasesInUse()).toEqual([v1, v2].sort());
  });

  it('reports unchanged when no loaded module differs, and still moves to the new release', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, app(f, 'one'));
    const v2 = await writeRelease(root, app(f, 'one', { 'unused.js': f.exportDefault('1') }));
    const hosted = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const result = await hosted.update(v2);
    expect(result).toMatchObject({ outcome: 'unchanged', outdated: [], disposed: [] });
    expect(hosted.dir).toBe(v2);
    if (f.name === 'cjs') {
      // A path appeared: every live CommonJS module is re-keyed into the new release.
      expect(moduleCache[`${v2}/msg.js`]).toBeDefined();
      expect(moduleCache[`${v1}/msg.js`]).toBeUndefined();
    }
  });
});

eachFlavour('hostApp in process mode', (f) => {
  it('runs the entry as a program and reports a change reaching it as unaccepted, keeping the old code', async () => {
    const root = await t.root();
    const prog = `${f.use('msg', './msg.js')}\nglobalThis.__procMsg = msg;\n`;
    const files = (text: string): Record<string, string | object> => ({ 'package.json': f.pkg(), 'index.js': prog, 'msg.js': f.exportDefault(JSON.stringify(text)) });
    const v1 = await writeRelease(root, files('one'));
    const hosted = t.defer(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    expect((globalThis as Record<string, unknown>).__procMsg).toBe('one');
    const result = await hosted.update(await writeRelease(root, files('two')));
    expect(result).toMatchObject({ outcome: 'unaccepted', chain: ['msg.js', 'index.js'] });
    expect(result.reason).toContain('Update propagation: msg.js -> index.js');
    expect(hosted.status()).toBe('abort');
    expect(hosted.dir).toBe(v1);
    if (f.name === 'cjs') expect(moduleCache[`${v1}/msg.js`]).toBeDefined();
  });

  it('applies a change a module accepts, without touching the entry', async () => {
    const root = await t.root();
    const prog = `${f.use('msg', './msg.js')}
globalThis.__procEvaluations = (globalThis.__procEvaluations || 0) + 1;
globalThis.__procRead = () => msg;
${f.acceptUse('msg', './msg.js')}
`;
    const files = (text: string): Record<string, string | object> => ({ 'package.json': f.pkg(), 'index.js': prog, 'msg.js': f.exportDefault(JSON.stringify(text)) });
    const read = globalThis as unknown as { __procEvaluations: number; __procRead: () => string };
    read.__procEvaluations = 0;
    const hosted = t.defer(await hostApp({ name: 'p', dir: await writeRelease(root, files('one')), mode: 'process' }));
    expect(read.__procRead()).toBe('one');
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'hot', disposed: ['msg.js'], accepted: ['index.js'] });
    expect(read.__procRead()).toBe('two');
    expect(read.__procEvaluations).toBe(1);
  });
});

describe('close', () => {
  it('evicts every module of the app from require.cache', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, app(CJS, 'one'));
    const hosted = await hostApp({ name: 'a', dir: v1 });
    expect(moduleCache[`${v1}/msg.js`]).toBeDefined();
    await hosted.close();
    expect(cachedUnder(v1)).toEqual([]);
    await expect(hosted.update(v1)).rejects.toMatchObject({ code: 'HOT_ERR_CLOSED' });
  });
});

eachFlavour('a self-accepting entry', (f) => {
  it('is evaluated again in process mode, its dispose closing what the old version opened', async () => {
    const root = await t.root();
    const prog = (v: string): string => `${f.use('http', 'node:http')}
const server = http.createServer((req, res) => res.end('${v}'));
server.listen(0);
globalThis.__procServer = server;
${f.hot}.accept();
${f.hot}.dispose(() => server.close());
`;
    const files = (v: string): Record<string, string | object> => ({ 'package.json': f.pkg(), 'index.js': prog(v) });
    const hosted = t.defer(await hostApp({ name: 'p', dir: await writeRelease(root, files('one')), mode: 'process' }));
    const procs = globalThis as unknown as { __procServer: Server };
    const first = procs.__procServer;
    const result = await hosted.update(await writeRelease(root, files('two')));
    expect(result).toMatchObject({ outcome: 'hot', disposed: ['index.js'], accepted: ['index.js'] });
    expect(procs.__procServer).not.toBe(first);
    expect(first.listening).toBe(false);
    procs.__procServer.close();
  });

  it('is evaluated again by the host in handler mode and its new handler serves', async () => {
    const root = await t.root();
    const files = (v: string): Record<string, string | object> => ({
      'package.json': f.pkg(),
      'index.js': `${f.hot}.accept();\n${f.exportDefault(`(req, res) => res.end('${v}')`)}\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
    expect(await server.get()).toBe('200 two');
  });
});

eachFlavour('the update queue', (f) => {
  it('applies concurrent updates one at a time, in call order', async () => {
    const root = await t.root();
    const dirs = await Promise.all(['one', 'two', 'three'].map((text) => writeRelease(root, app(f, text))));
    const hosted = t.defer(await hostApp({ name: 'a', dir: dirs[0]! }));
    const server = t.defer(await serve(hosted.handler));
    const [second, third] = await Promise.all([hosted.update(dirs[1]!), hosted.update(dirs[2]!)]);
    expect(second).toMatchObject({ outcome: 'hot', from: dirs[0], to: dirs[1] });
    expect(third).toMatchObject({ outcome: 'hot', from: dirs[1], to: dirs[2] });
    expect(await server.get()).toBe('200 three 1');
  });
});
