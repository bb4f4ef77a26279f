import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const pkg = { name: 'esm-app', version: '1.0.0', type: 'module', main: 'index.js' };
const app = (files: Record<string, string>): Record<string, string | object> => ({ 'package.json': pkg, ...files });

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
