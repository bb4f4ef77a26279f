import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeFilesManifest, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const idx = `const fs = require('fs');
const path = require('path');
const page = fs.readFileSync(path.join(__dirname, 'views/page.html'), 'utf8');
const util = require('./util');
module.exports = (req, res) => res.end(util.wrap(page));
`;
const util = "exports.wrap = (s) => `[${s}]`;";

describe('a changed file that is not a module', () => {
  it('swaps the whole app in handler mode: every module re-evaluated from the new release', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, { 'index.js': idx, 'util.js': util, 'views/page.html': 'page one' });
    const v2 = await writeRelease(root, { 'index.js': idx, 'util.js': util, 'views/page.html': 'page two' });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 [page one]');
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'hot', outdated: [], disposed: ['index.js', 'util.js'], accepted: ['index.js'] });
    expect(result.reason).toBe('non-module file changed: views/page.html');
    expect(await server.get()).toBe('200 [page two]');
  });

  it('is unaccepted in process mode, with the file named in the reason', async () => {
    const root = await t.root();
    const prog = "require('./util');\n";
    const v1 = await writeRelease(root, { 'index.js': prog, 'util.js': util, 'data/seed.json': '{"a":1}' });
    const v2 = await writeRelease(root, { 'index.js': prog, 'util.js': util, 'data/seed.json': '{"a":2}' });
    const app = t.defer(await hostApp({ name: 'p', dir: v1, mode: 'process' }));
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'unaccepted', reason: 'non-module file changed: data/seed.json' });
    expect(app.dir).toBe(v1);
  });

  it('still honours a decline: the whole-app swap aborts', async () => {
    const root = await t.root();
    const declining = idx + "module.hot.decline('./util');\n";
    const v1 = await writeRelease(root, { 'index.js': declining, 'util.js': util, 'views/page.html': 'page one' });
    const v2 = await writeRelease(root, { 'index.js': declining, 'util.js': util, 'views/page.html': 'page two' });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(v2)).toMatchObject({ outcome: 'declined', chain: ['util.js', 'index.js'] });
    expect(await server.get()).toBe('200 [page one]');
  });

  it('ignores a changed code file that was never loaded, and a bumped package.json version', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, { 'index.js': idx, 'util.js': util, 'views/page.html': 'p', 'unused.js': 'exports.a = 1;' });
    const v2 = await writeRelease(root, {
      'package.json': { name: 'app', version: '1.0.1', main: 'index.js' },
      'index.js': idx, 'util.js': util, 'views/page.html': 'p', 'unused.js': 'exports.a = 2;',
    });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    expect(await app.update(v2)).toMatchObject({ outcome: 'unchanged', outdated: [], disposed: [] });
  });
});

describe('the per-release file manifest (.hotdeploy/files.json)', () => {
  it('is trusted when both releases have one: hashes decide, files are not read', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, { 'index.js': idx, 'util.js': util, 'views/page.html': 'p' });
    // v2's util.js differs on disk, but its manifest says it is the same file: the runtime trusts it.
    const v2 = await writeRelease(root, { 'index.js': idx, 'util.js': "exports.wrap = (s) => `{${s}}`;", 'views/page.html': 'p' });
    await writeFilesManifest(v1);
    await writeFilesManifest(v2);
    const { createHash } = await import('node:crypto');
    await writeFilesManifest(v2, { 'util.js': createHash('sha256').update(util).digest('hex') });
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    expect(await app.update(v2)).toMatchObject({ outcome: 'unchanged' });
  });

  it('detects a changed module and a changed template from the manifests', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, { 'index.js': idx, 'util.js': util, 'views/page.html': 'p1' });
    const v2 = await writeRelease(root, { 'index.js': idx, 'util.js': "exports.wrap = (s) => `{${s}}`;", 'views/page.html': 'p1' });
    const v3 = await writeRelease(root, { 'index.js': idx, 'util.js': "exports.wrap = (s) => `{${s}}`;", 'views/page.html': 'p3' });
    for (const dir of [v1, v2, v3]) await writeFilesManifest(dir);
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['util.js'], disposed: ['index.js', 'util.js'] });
    expect(await server.get()).toBe('200 {p1}');
    expect(await app.update(v3)).toMatchObject({ outcome: 'hot', reason: 'non-module file changed: views/page.html' });
    expect(await server.get()).toBe('200 {p3}');
  });
});
