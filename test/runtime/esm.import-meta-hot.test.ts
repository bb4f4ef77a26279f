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

// What import.meta.hot does unlike module.hot; what both do is tested for both module kinds
// (test/helpers/flavours.ts).
describe.runIf(esmHotSupported)('import.meta.hot, with Vite\'s meanings', () => {
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
