import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const pkg = { name: 'esm-app', version: '1.0.0', type: 'module', main: 'index.js' };
const app = (files: Record<string, string | object>): Record<string, string | object> => ({ 'package.json': pkg, ...files });

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

  it('a JSON import, a module with a BOM and one in a nested CommonJS scope load as they would without the runtime', async () => {
    const root = await t.root();
    const files = (text: string): Record<string, string | object> => app({
      'index.js': `import data from './data.json' with { type: 'json' };\nimport { bom } from './bom.js';\nimport legacy from './legacy/old.js';
export default (req, res) => res.end([data.text, bom, legacy].join(' '));\n`,
      'data.json': JSON.stringify({ text }),
      'bom.js': `\ufeffexport const bom = 'bom';\n`,
      'legacy/package.json': { type: 'commonjs' },
      'legacy/old.js': `module.exports = ${JSON.stringify(`old-${text}`)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'esm', dir: await writeRelease(root, files('one')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 one bom old-one');
    // The JSON module is a module of the app: its change reaches its importer like any other.
    expect(await hosted.update(await writeRelease(root, files('two')))).toMatchObject({ outcome: 'hot', outdated: ['data.json', 'legacy/old.js'] });
    expect(await server.get()).toBe('200 two bom old-two');
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

// A CommonJS app's worker has no ES module hooks: what an ES module it require()s imports is unseen.
const requireEsm = (process.features as { require_module?: boolean }).require_module === true;

describe.runIf(requireEsm)('a CommonJS app that loads an ES module by require(esm)', () => {
  const files = (msg: string, text: string, extra: Record<string, string> = {}): Record<string, string> => ({
    'index.js': "const m = require('./msg.mjs');\nmodule.exports = (req, res) => res.end(m.msg());\n",
    'msg.mjs': `import { text } from './text.mjs';\nexport const msg = () => ${JSON.stringify(msg)} + ' ' + text;\n`,
    'text.mjs': `export const text = ${JSON.stringify(text)};\n`,
    ...extra,
  });

  it('takes the reload path for a change to that module, or to code it may import, while the old code serves', async () => {
    const root = await t.root();
    const hosted = t.defer(await hostApp({ name: 'cjs', dir: await writeRelease(root, files('m1', 't1')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await server.get()).toBe('200 m1 t1');
    const required = await hosted.update(await writeRelease(root, files('m2', 't1')));
    expect(required).toMatchObject({ outcome: 'unaccepted', chain: ['msg.mjs', 'index.js'], reason: 'Aborted because msg.mjs is loaded by require(esm)' });
    const imported = await hosted.update(await writeRelease(root, files('m1', 't2')));
    expect(imported).toMatchObject({ outcome: 'unaccepted', chain: ['text.mjs'] });
    expect(imported.reason).toContain('text.mjs may be imported by an ES module loaded by require(esm) (msg.mjs)');
    expect(await server.get()).toBe('200 m1 t1');
  });

  it('still applies a change to its CommonJS modules hot', async () => {
    const root = await t.root();
    const withHelper = (v: string): Record<string, string> => files('m1', 't1', {
      'index.js': "const m = require('./msg.mjs');\nconst h = require('./helper.js');\nmodule.exports = (req, res) => res.end(m.msg() + ' ' + h);\n",
      'helper.js': `module.exports = ${JSON.stringify(v)};\n`,
    });
    const hosted = t.defer(await hostApp({ name: 'cjs', dir: await writeRelease(root, withHelper('h1')) }));
    const server = t.defer(await serve(hosted.handler));
    expect(await hosted.update(await writeRelease(root, withHelper('h2')))).toMatchObject({ outcome: 'hot', outdated: ['helper.js'] });
    expect(await server.get()).toBe('200 m1 t1 h2');
  });
});
