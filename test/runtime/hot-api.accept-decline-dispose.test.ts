import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cleanupStack, moduleCache, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: unknown[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

/** A CommonJS entry serving `current()`, which `body` defines. */
const entry = (body: string): string => `${body}
module.exports = (req, res) => res.end(String(current()));
`;

/** An entry serving `current()`, which `body` defines. */
const served = (f: Flavour, body: string): string => `${body}\n${f.exportDefault('(req, res) => res.end(String(current()))')}\n`;

eachFlavour('the hot API both module kinds share', (f) => {
  const files = (rest: Record<string, string>): Record<string, string | object> => ({ 'package.json': f.pkg(), ...rest });

  it('accept(dep, cb): the accepting parent gets the new version and is not evaluated again', async () => {
    const root = await t.root();
    const idx = served(f, `${f.use('a', './a.js')}\nglobalThis.log.push('index evaluated');
${f.acceptUse('a', './a.js', "globalThis.log.push(['accepted', a]);")}\nconst current = () => a;`);
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'a.js': f.exportDefault("'a1'") }));
    const v2 = await writeRelease(root, files({ 'index.js': idx, 'a.js': f.exportDefault("'a2'") }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['a.js'], disposed: ['a.js'], accepted: ['index.js'] });
    expect(g.log).toEqual(['index evaluated', ['accepted', 'a2']]);
    expect(await server.get()).toBe('200 a2');
  });

  it('accept() of a module itself: evaluated again without its parent, dispose data handed over', async () => {
    const root = await t.root();
    const idx = served(f, `${f.load('./state.js')}\nglobalThis.log.push('index evaluated');\nconst current = () => globalThis.stateValue;`);
    const state = (v: string): string => `globalThis.stateValue = ${JSON.stringify(v)} + ':' + (${f.hot}.data?.count ?? 'none');
${f.hot}.accept();
${f.hot}.dispose((data) => { data.count = 7; globalThis.log.push('disposed'); });
globalThis.log.push(['evaluated', ${JSON.stringify(v)}]);`;
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'state.js': state('one') }));
    const v2 = await writeRelease(root, files({ 'index.js': idx, 'state.js': state('two') }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const oldHot = f.name === 'cjs' ? (moduleCache[`${v1}/state.js`] as unknown as { hot: { active: boolean } }).hot : undefined;
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 one:none');
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', disposed: ['state.js'], accepted: ['state.js'] });
    expect(g.log).toEqual([['evaluated', 'one'], 'index evaluated', 'disposed', ['evaluated', 'two']]);
    expect(await server.get()).toBe('200 two:7');
    // webpack's module.hot.active (import.meta.hot has none).
    if (oldHot) expect(oldHot.active).toBe(false);
  });

  it('decline(): a self-declined module anywhere on the propagation path aborts the update, and the old code serves', async () => {
    const root = await t.root();
    const idx = served(f, `${f.use('m', './mid.js')}\nconst current = () => m;`);
    const mid = `${f.hot}.decline();\n${f.use('leaf', './leaf.js')}\n${f.exportDefault('leaf')}`;
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'mid.js': mid, 'leaf.js': f.exportDefault("'l1'") }));
    const v2 = await writeRelease(root, files({ 'index.js': idx, 'mid.js': mid, 'leaf.js': f.exportDefault("'l2'") }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'declined', chain: ['leaf.js', 'mid.js'], disposed: [], accepted: [] });
    expect(result.reason).toContain('self decline: mid.js');
    expect(app.status()).toBe('abort');
    expect(await server.get()).toBe('200 l1');
  });

  it('invalidate() evaluates the module again from the current release, up its importers, and reports through onUpdate', async () => {
    const root = await t.root();
    const idx = served(f, `${f.use('c', './counter.js')}\nconst current = () => c;`);
    const counter = `globalThis.evaluations = (globalThis.evaluations || 0) + 1;
globalThis.invalidateCounter = () => ${f.hot}.invalidate();
${f.exportDefault('globalThis.evaluations')}`;
    (globalThis as unknown as { evaluations: number }).evaluations = 0;
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'counter.js': counter }));
    const results: unknown[] = [];
    const app = t.defer(await hostApp({ name: 'a', dir: v1, onUpdate: (r) => results.push(r) }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 1');
    (globalThis as unknown as { invalidateCounter: () => void }).invalidateCounter();
    await waitFor('the invalidated update', () => results.length === 1, 5000);
    expect(results[0]).toMatchObject({ outcome: 'hot', outdated: ['counter.js'], disposed: ['counter.js', 'index.js'] });
    expect(await server.get()).toBe('200 2');
  });

  it('invalidate() while an update applies queues a follow-up update that propagates past the module', async () => {
    const root = await t.root();
    const idx = served(f, `${f.use('shape', './shape.js')}\nglobalThis.log.push('index evaluated');\nconst current = () => shape;`);
    const shape = (v: string): string => `${f.exportDefault(`'${v}'`)}
${f.hot}.accept();
// The new version cannot take over the old one's state in place: hand the update to the importers
// (once — the version the follow-up evaluates again must not invalidate itself forever).
const invalidating = Boolean(${f.hot}.data?.replaced && !${f.hot}.data.invalidated);
if (invalidating) ${f.hot}.invalidate();
${f.hot}.dispose((data) => { data.replaced = true; data.invalidated = invalidating; });`;
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'shape.js': shape('round') }));
    const v2 = await writeRelease(root, files({ 'index.js': idx, 'shape.js': shape('square') }));
    const results: { outcome: string; disposed: string[] }[] = [];
    const app = t.defer(await hostApp({ name: 'a', dir: v1, onUpdate: (r) => results.push(r) }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', disposed: ['shape.js'], accepted: ['shape.js'] });
    await waitFor('the follow-up update', () => results.length === 1, 5000);
    expect(results[0]).toMatchObject({ outcome: 'hot', disposed: ['index.js', 'shape.js'] });
    expect(g.log).toEqual(['index evaluated', 'index evaluated']);
    expect(await server.get()).toBe('200 square');
  });
});

// webpack's module.hot only (import.meta.hot has Vite's meanings instead: esm.import-meta-hot.test.ts).

describe('module.hot.accept(deps, cb, errHandler)', () => {
  it('calls the accepting parent\'s callback with the outdated dependencies, once per callback, and keeps the parent', async () => {
    const root = await t.root();
    const idx = entry(`let a = require('./a'); let b = require('./b');
const born = Date.now() + Math.random();
globalThis.log.push('index evaluated');
module.hot.accept(['./a', './b'], (deps) => { globalThis.log.push(deps); a = require('./a'); b = require('./b'); });
const current = () => a + b + (born > 0 ? '' : '');`);
    const v1 = await writeRelease(root, { 'index.js': idx, 'a.js': "module.exports = 'a1';", 'b.js': "module.exports = 'b1';" });
    const v2 = await writeRelease(root, { 'index.js': idx, 'a.js': "module.exports = 'a2';", 'b.js': "module.exports = 'b2';" });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 a1b1');
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['a.js', 'b.js'], disposed: ['a.js', 'b.js'], accepted: ['index.js'] });
    expect(g.log).toEqual(['index evaluated', ['a.js', 'b.js']]);
    expect(await server.get()).toBe('200 a2b2');
  });

  it('hands an accept callback\'s error to its error handler with the module and dependency ids', async () => {
    const root = await t.root();
    const idx = entry(`let a = require('./a');
module.hot.accept('./a', () => { throw new Error('boom in callback'); }, (err, ctx) => globalThis.log.push([err.message, ctx]));
const current = () => a;`);
    const v1 = await writeRelease(root, { 'index.js': idx, 'a.js': "module.exports = 'a1';" });
    const v2 = await writeRelease(root, { 'index.js': idx, 'a.js': "module.exports = 'a2';" });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const result = await app.update(v2);
    expect(result.outcome).toBe('hot');
    expect(g.log).toEqual([['boom in callback', { moduleId: 'index.js', dependencyId: 'a.js' }]]);
  });

  it('passes an evaluation error of the new version to the old version\'s accept(errHandler)', async () => {
    const root = await t.root();
    const idx = entry("require('./state');\nconst current = () => 'ok';");
    const v1 = await writeRelease(root, { 'index.js': idx, 'state.js': "module.hot.accept((err, ctx) => globalThis.log.push([err.message, ctx.moduleId]));" });
    const v2 = await writeRelease(root, { 'index.js': idx, 'state.js': "throw new Error('broken state');" });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const result = await app.update(v2);
    expect(result.outcome).toBe('hot');
    expect(g.log).toEqual([['broken state', 'state.js']]);
  });
});

describe('module.hot.decline(deps), statuses and dispose handlers', () => {
  it('aborts on a declined dependency before anything is disposed: old code keeps serving', async () => {
    const root = await t.root();
    const idx = entry(`const db = require('./db');
module.hot.decline('./db');
const current = () => db;`);
    const db = (v: string): string => `module.hot.dispose(() => globalThis.log.push('db disposed'));\nmodule.exports = ${JSON.stringify(v)};`;
    const v1 = await writeRelease(root, { 'index.js': idx, 'db.js': db('db1') });
    const v2 = await writeRelease(root, { 'index.js': idx, 'db.js': db('db2') });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const statuses: string[] = [];
    (moduleCache[`${v1}/index.js`] as unknown as { hot: { addStatusHandler(h: (s: string) => void): void } }).hot
      .addStatusHandler((s) => statuses.push(s));
    const server = t.defer(await serve(app.handler));
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'declined', chain: ['db.js', 'index.js'], disposed: [], accepted: [] });
    expect(result.reason).toContain('declined dependency: db.js in index.js');
    expect(g.log).toEqual([]);
    expect(statuses).toEqual(['check', 'prepare', 'ready', 'abort']);
    expect(app.status()).toBe('abort');
    expect(app.dir).toBe(v1);
    expect(await server.get()).toBe('200 db1');
  });

  it('runs dispose before the new version evaluates, skips removed handlers, and walks webpack\'s statuses', async () => {
    const root = await t.root();
    const idx = (v: string): string => entry(`globalThis.log.push('evaluate ${v} data=' + JSON.stringify(module.hot.data));
const removed = () => globalThis.log.push('removed handler ran');
module.hot.dispose((data) => { data.from = '${v}'; globalThis.log.push('dispose ${v}'); });
module.hot.addDisposeHandler(removed);
module.hot.removeDisposeHandler(removed);
module.hot.status((s) => globalThis.log.push('status ' + s));
const silenced = (s) => globalThis.log.push('silenced handler ran ' + s);
module.hot.addStatusHandler(silenced);
module.hot.removeStatusHandler(silenced);
const current = () => '${v}';`)
    const v1 = await writeRelease(root, { 'index.js': idx('v1') });
    const v2 = await writeRelease(root, { 'index.js': idx('v2') });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    expect((await app.update(v2)).outcome).toBe('hot');
    expect(g.log).toEqual([
      'evaluate v1 data=undefined',
      'status check', 'status prepare', 'status ready', 'status dispose',
      'dispose v1',
      // The old module's status handler leaves with it; the new one registers its own.
      'evaluate v2 data={"from":"v1"}',
      'status idle',
    ]);
    expect(app.status()).toBe('idle');
  });
});
