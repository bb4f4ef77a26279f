import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cleanupStack, serve, writeFilesManifest, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

/** index.js reads views/page.html when it evaluates and wraps it with util.js. */
const appFiles = (f: Flavour, page: string, rest: Record<string, string | object> = {}): Record<string, string | object> => ({
  'package.json': f.pkg(),
  'index.js': `${f.use('fs', 'node:fs')}\n${f.use('path', 'node:path')}\n${f.use('util', './util.js')}
const page = fs.readFileSync(path.join(${f.dirname}, 'views/page.html'), 'utf8');
${f.exportDefault('(req, res) => res.end(util(page))')}\n`,
  'util.js': f.exportDefault('(s) => `[${s}]`'),
  'views/page.html': page,
  ...rest,
});

eachFlavour('a changed file that is not a module', (f) => {
  it('swaps the whole app in handler mode: every module evaluated again from the new release', async () => {
    const root = await t.root();
    const app = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, appFiles(f, 'page one')) }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 [page one]');
    const result = await app.update(await writeRelease(root, appFiles(f, 'page two')));
    expect(result).toMatchObject({ outcome: 'hot', outdated: [], disposed: ['index.js', 'util.js'], accepted: ['index.js'] });
    expect(result.reason).toBe('non-module file changed: views/page.html');
    expect(await server.get()).toBe('200 [page two]');
  });

  it('is unaccepted in process mode, with the file named in the reason', async () => {
    const root = await t.root();
    const files = (seed: string): Record<string, string | object> => ({
      'package.json': f.pkg(), 'index.js': f.load('./util.js'), 'util.js': f.exportDefault('1'), 'data/seed.json': seed,
    });
    const v1 = await writeRelease(root, files('{"a":1}'));
    const app = t.defer(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    const result = await app.update(await writeRelease(root, files('{"a":2}')));
    expect(result).toMatchObject({ outcome: 'unaccepted', reason: 'non-module file changed: data/seed.json' });
    expect(app.dir).toBe(v1);
  });

  it('still honours a decline: the whole-app swap aborts', async () => {
    const root = await t.root();
    const declining = { 'util.js': `${f.hot}.decline();\n${f.exportDefault('(s) => `[${s}]`')}` };
    const app = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, appFiles(f, 'page one', declining)) }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(await writeRelease(root, appFiles(f, 'page two', declining)))).toMatchObject({ outcome: 'declined', chain: ['util.js'] });
    expect(await server.get()).toBe('200 [page one]');
  });

  it('ignores a changed code file that was never loaded, and a bumped package.json version', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, appFiles(f, 'p', { 'unused.js': f.exportDefault('1') }));
    const v2 = await writeRelease(root, appFiles(f, 'p', { 'package.json': f.pkg({ version: '1.0.1' }), 'unused.js': f.exportDefault('2') }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    expect(await app.update(v2)).toMatchObject({ outcome: 'unchanged', outdated: [], disposed: [] });
  });
});

eachFlavour('the per-release file manifest (.hotdeploy/files.json)', (f) => {
  const braces = { 'util.js': f.exportDefault('(s) => `{${s}}`') };

  it('is trusted when both releases have one: hashes decide, files are not read', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, appFiles(f, 'p'));
    // v2's util.js differs on disk, but its manifest says it is the same file: the runtime trusts it.
    const v2 = await writeRelease(root, appFiles(f, 'p', braces));
    await writeFilesManifest(v1);
    const { createHash } = await import('node:crypto');
    await writeFilesManifest(v2, { 'util.js': createHash('sha256').update(appFiles(f, 'p')['util.js'] as string).digest('hex') });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    expect(await app.update(v2)).toMatchObject({ outcome: 'unchanged' });
  });

  it('detects a changed module and a changed template from the manifests', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, appFiles(f, 'p1'));
    const v2 = await writeRelease(root, appFiles(f, 'p1', braces));
    const v3 = await writeRelease(root, appFiles(f, 'p3', braces));
    for (const dir of [v1, v2, v3]) await writeFilesManifest(dir);
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['util.js'], disposed: ['index.js', 'util.js'] });
    expect(await server.get()).toBe('200 {p1}');
    expect(await app.update(v3)).toMatchObject({ outcome: 'hot', reason: 'non-module file changed: views/page.html' });
    expect(await server.get()).toBe('200 {p3}');
  });
});
