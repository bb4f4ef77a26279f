import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: unknown[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

const pkg = { name: 'esm-app', version: '1.0.0', type: 'module', main: 'index.js' };
const app = (files: Record<string, string>): Record<string, string | object> => ({ 'package.json': pkg, ...files });

describe.runIf(esmHotSupported)('ES module apps hot-swap', () => {
  it('re-evaluates a changed module and its importers up to the entry; unchanged modules keep their instance', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import { msg } from './msg.js';\nimport { count } from './counter.js';\nglobalThis.log.push('index');\nexport default (req, res) => res.end(msg + ' ' + count());\n`,
      'msg.js': `export const msg = ${JSON.stringify(text)};\n`,
      'counter.js': `let n = 0;\nglobalThis.log.push('counter');\nexport const count = () => ++n;\n`,
    });
    const v1 = await writeRelease(root, files('one'));
    const v2 = await writeRelease(root, files('two'));
    const hosted = t.defer(await hostApp({ name: 'esm', dir: v1 }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 one 1');
    const result = await hosted.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'], accepted: ['index.js'] });
    expect(await server.get()).toBe('200 two 2');
    expect(g.log).toEqual(['counter', 'index', 'index']);
    expect(hosted.releasesInUse()).toEqual([v1, v2].sort());
  });

  it('gives a self-accepting module\'s old accept callback the new namespace, and data persists', async () => {
    const root = await t.root();
    const files = (v: string): Record<string, string | object> => app({
      'index.js': `import * as state from './state.js';\nlet current = state;\nexport default (req, res) => res.end(current.value);\nexport function swap(ns) { current = ns; }\nglobalThis.swap = swap;\n`,
      'state.js': `export const value = ${JSON.stringify(v)} + ':' + (import.meta.hot.data.count ?? 'none');
import.meta.hot.accept((ns) => { globalThis.log.push(['accepted', ${JSON.stringify(v)}, ns.value]); globalThis.swap(ns); });
import.meta.hot.dispose((data) => { data.count = (data.count ?? 0) + 1; globalThis.log.push(['disposed', ${JSON.stringify(v)}]); });
`,
    });
    const v1 = await writeRelease(root, files('one'));
    const v2 = await writeRelease(root, files('two'));
    const hosted = t.defer(await hostApp({ name: 'esm', dir: v1 }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 one:none');
    expect(await hosted.update(v2)).toMatchObject({ outcome: 'hot', disposed: ['state.js'], accepted: ['state.js'] });
    expect(g.log).toEqual([['disposed', 'one'], ['accepted', 'one', 'two:1']]);
    expect(await server.get()).toBe('200 two:1');
  });
});

describe.runIf(esmHotSupported)('import.meta.hot', () => {
  it('accept(dep, cb) and accept([deps], cb) get the new namespaces; the acceptor keeps its instance and static bindings', async () => {
    const root = await t.root();
    const files = (a: string, b: string): Record<string, string | object> => app({
      'index.js': `import { a } from './a.js';\nimport { b } from './b.js';\nlet current = { a, b };\nglobalThis.log.push('index');
import.meta.hot.accept('./a.js', (ns) => { globalThis.log.push(['a', ns.a, a]); current = { ...current, a: ns.a }; });
import.meta.hot.accept(['./a.js', './b.js'], ([na, nb]) => { globalThis.log.push(['both', na?.a, nb?.b]); });
export default (req, res) => res.end(current.a + current.b);\n`,
      'a.js': `export const a = ${JSON.stringify(a)};\n`,
      'b.js': `export const b = ${JSON.stringify(b)};\n`,
    });
    const v1 = await writeRelease(root, files('a1', 'b1'));
    const v2 = await writeRelease(root, files('a2', 'b1'));
    const hosted = t.defer(await hostApp({ name: 'esm', dir: v1, mode: 'process' }));
    expect(await hosted.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['a.js'], disposed: ['a.js'], accepted: ['index.js'] });
    expect(g.log).toEqual(['index', ['a', 'a2', 'a1'], ['both', 'a2', undefined]]);
  });

  it('decline() takes the reload path with the chain, and the old code keeps serving', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import { msg } from './msg.js';\nexport default (req, res) => res.end(msg);\n`,
      'msg.js': `import.meta.hot.decline();\nexport const msg = ${JSON.stringify(text)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    const result = await hosted.update(await writeRelease(root, files('two')));
    expect(result).toMatchObject({ outcome: 'declined', chain: ['msg.js'] });
    expect(result.reason).toContain('self decline: msg.js');
    expect(await server.get()).toBe('200 one');
  });

  it('a change nobody accepts in process mode is unaccepted with its chain', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import { msg } from './msg.js';\nglobalThis.log.push(msg);\n`,
      'msg.js': `export const msg = ${JSON.stringify(text)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')), mode: 'process' }));
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'unaccepted', chain: ['msg.js', 'index.js'] });
  });

  it('an evaluation error fails the update; the old handler serves, and the next update evaluates the entry again', async () => {
    const root = await t.root();
    const files = (msg: string): Record<string, string | object> => app({
      'index.js': `import { msg } from './msg.js';\nexport default (req, res) => res.end(msg);\n`,
      'msg.js': msg,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('export const msg = "one";')) }));
    const server = t.defer(await serve(hosted.handler));
    const failed = await hosted.update(await writeRelease(root, files('export const msg = "two";\nthrow new Error("boom in msg");')));
    expect(failed).toMatchObject({ outcome: 'failed', error: { message: 'boom in msg' } });
    expect(hosted.status()).toBe('fail');
    expect(await server.get()).toBe('200 one');
    expect(await hosted.update(await writeRelease(root, files('export const msg = "three";')))).toMatchObject({ outcome: 'hot' });
    expect(await server.get()).toBe('200 three');
  });

  it('invalidate() propagates to the importers: the entry is evaluated again', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, app({
      'index.js': `import { n } from './self.js';\nglobalThis.log.push(['index', n]);\nexport default (req, res) => res.end(String(n));\n`,
      'self.js': `import.meta.hot.accept();\nglobalThis.invalidateSelf = () => import.meta.hot.invalidate();\nexport const n = (import.meta.hot.data.n = (import.meta.hot.data.n ?? 0) + 1);\n`,
    }));
    const updates: unknown[] = [];
    const hosted = t.defer(await hostApp({ name: 'esm', dir: v1, onUpdate: (r) => updates.push(r) }));
    const server = t.defer(await serve(hosted.handler));
    (globalThis as unknown as { invalidateSelf: () => void }).invalidateSelf();
    await expect.poll(() => updates.length).toBe(1);
    expect(updates[0]).toMatchObject({ outcome: 'hot', outdated: ['self.js'], accepted: ['index.js'] });
    expect(await server.get()).toBe('200 2');
  });

  it('prune(cb) runs with data once no module imports it any more', async () => {
    const root = await t.root();
    const side = `import.meta.hot.data.seen = true;\nimport.meta.hot.prune((data) => globalThis.log.push(['pruned', data.seen]));\n`;
    const v1 = await writeRelease(root, app({ 'index.js': `import './side.js';\nexport default (req, res) => res.end('one');\n`, 'side.js': side }));
    const v2 = await writeRelease(root, app({ 'index.js': `export default (req, res) => res.end('two');\n`, 'side.js': side }));
    const hosted = t.defer(await hostApp({ name: 'esm', dir: v1 }));
    expect(await hosted.update(v2)).toMatchObject({ outcome: 'hot', disposed: ['index.js'] });
    expect(g.log).toEqual([['pruned', true]]);
  });
});

describe.runIf(esmHotSupported)('ES module apps, resolution and mixed modules', () => {
  it('an unchanged module\'s later import() lands in the current release', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `export default async (req, res) => res.end((await import('./late.js')).text);\n`,
      'late.js': `export const text = ${JSON.stringify(text)};\n`,
      'other.js': `export const v = ${JSON.stringify(text)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    // late.js is not loaded yet: the change needs nothing, and the entry stays.
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'unchanged' });
    expect(await server.get()).toBe('200 two');
  });

  it('an ES module importing a changed CommonJS module gets its new version', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import msg from './msg.cjs';\nexport default (req, res) => res.end(msg);\n`,
      'msg.cjs': `module.exports = ${JSON.stringify(text)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'hot', disposed: ['index.js', 'msg.cjs'] });
    expect(await server.get()).toBe('200 two');
  });

  it('a change under a CommonJS require(esm) takes the reload path', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import load from './loader.cjs';\nexport default (req, res) => res.end(load());\n`,
      'loader.cjs': `module.exports = () => require('./msg.js').msg;\n`,
      'msg.js': `export const msg = ${JSON.stringify(text)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 one');
    const result = await hosted.update(await writeRelease(root, files('two')));
    expect(result).toMatchObject({ outcome: 'unaccepted', chain: ['msg.js', 'loader.cjs'] });
    expect(result.reason).toContain('require(esm)');
    expect(await server.get()).toBe('200 one');
  });
});
