import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostApp, type HostedApp } from '../../agent/index.js';
import { makeBundle } from '../helpers/bundles.js';
import { get, snapshotApp, testServer, upload, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { answerOf, lockfileFor, OFFLINE_NPMRC, packIntoCache, readJson, type Packed } from './helpers.js';

// Dependencies installed on the host with a real `npm ci`, offline, from an npm cache the test fills
// with tarballs it packed itself; then reused by hard links while the lockfile stays the same.

let server: TestServer;
let work: { dir: string; cleanup: () => Promise<void> };
let packages: Packed[];
let hosted: HostedApp | undefined;

const pkg = (name: string, version: string): Packed => packages.find((p) => p.name === name && p.version === version) as Packed;

function app(version: string, greeting: string, tinyB = '1.0.0'): Record<string, string | object> {
  const deps = [pkg('tiny-a', '1.0.0'), pkg('tiny-b', tinyB)];
  return {
    'package.json': { name: 'demo', version, main: 'index.js', hotdeploy: { port: 0 }, dependencies: { 'tiny-a': '^1.0.0' } },
    'package-lock.json': lockfileFor({ name: 'demo', version }, { 'tiny-a': '^1.0.0' }, deps),
    'index.js': `const a = require('tiny-a');\nmodule.exports = (req, res) => res.end(${JSON.stringify(greeting)} + ' ' + a());\n`,
  };
}

const releaseDir = (version: string) => path.join(server.dataDir, 'apps', 'demo', 'releases', version);
const meta = async (version: string) => (await get(server.app, `/v1/apps/demo/releases/${version}`)).json();

beforeAll(async () => {
  work = await tempDir('hotdeploy-install-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  server = await testServer({ npmrc });
  packages = await packIntoCache(work.dir, path.join(server.dataDir, 'npm', 'cache'), [
    { name: 'tiny-b', version: '1.0.0', files: { 'index.js': "module.exports = () => 'b1';\n", 'README.md': '# tiny-b\n' } },
    { name: 'tiny-b', version: '1.1.0', files: { 'index.js': "module.exports = () => 'b2';\n", 'README.md': '# tiny-b\n' } },
    { name: 'tiny-a', version: '1.0.0', dependencies: { 'tiny-b': '^1.0.0' }, files: { 'index.js': "const b = require('tiny-b');\nmodule.exports = () => 'a+' + b();\n" } },
  ]);
}, 60_000);

afterAll(async () => {
  await hosted?.close();
  await server?.close();
  await work?.cleanup();
});

describe('dependencies installed on the host', () => {
  it('runs npm ci for a bundle with a lockfile and no node_modules, and indexes what it installed', async () => {
    const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(app('1.0.0', 'one')));
    expect(res.statusCode, res.body).toBe(201);
    expect((await meta('1.0.0')).install).toMatchObject({ how: 'npm ci', lockfile: 'package-lock.json', scripts: false, files: 5 });
    const files = (await readJson<{ files: Record<string, string> }>(path.join(releaseDir('1.0.0'), '.hotdeploy', 'files.json'))).files;
    expect(Object.keys(files).filter((f) => f.startsWith('node_modules/')).sort()).toEqual([
      'node_modules/tiny-a/index.js', 'node_modules/tiny-a/package.json',
      'node_modules/tiny-b/README.md', 'node_modules/tiny-b/index.js', 'node_modules/tiny-b/package.json',
    ]);
    hosted = await hostApp({ name: 'install-demo', dir: releaseDir('1.0.0') });
    expect(await answerOf(hosted)).toBe('one a+b1');
  });

  it('links the same install into the next release (same inodes, no npm), and the update is hot with only the app file outdated', async () => {
    const res = await upload(server.app, 'demo', '1.0.1', await makeBundle(app('1.0.1', 'two')));
    expect(res.statusCode, res.body).toBe(201);
    expect((await meta('1.0.1')).install).toMatchObject({ how: 'linked', from: '1.0.0', files: 5 });
    const inode = async (version: string) => (await stat(path.join(releaseDir(version), 'node_modules/tiny-b/index.js'))).ino;
    expect(await inode('1.0.1')).toBe(await inode('1.0.0'));
    const changes = await readJson<{ changed: Record<string, string> }>(path.join(releaseDir('1.0.1'), '.hotdeploy', 'changes.json'));
    expect(Object.keys(changes.changed).sort()).toEqual(['index.js', 'package-lock.json', 'package.json']);
    const result = await hosted!.update(releaseDir('1.0.1'));
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['index.js'] });
    expect(await answerOf(hosted!)).toBe('two a+b1');
  });

  it('installs again when the lockfile changes, and the update sees only the package that changed', async () => {
    const res = await upload(server.app, 'demo', '1.0.2', await makeBundle(app('1.0.2', 'two', '1.1.0')));
    expect(res.statusCode, res.body).toBe(201);
    expect((await meta('1.0.2')).install).toMatchObject({ how: 'npm ci' });
    const changes = await readJson<{ changed: Record<string, string> }>(path.join(releaseDir('1.0.2'), '.hotdeploy', 'changes.json'));
    expect(Object.keys(changes.changed).filter((f) => f.startsWith('node_modules/')).sort())
      .toEqual(['node_modules/tiny-b/index.js', 'node_modules/tiny-b/package.json']);
    const result = await hosted!.update(releaseDir('1.0.2'));
    expect(result).toMatchObject({ outcome: 'hot', outdated: ['node_modules/tiny-b/index.js'] });
    expect(await answerOf(hosted!)).toBe('two a+b2');
  });

  it('answers 422 DEPLOY_ERR_INSTALL with npm\'s last lines when npm ci fails; nothing changes', async () => {
    const before = await snapshotApp(server.dataDir, 'demo');
    const files = app('1.0.3', 'three');
    // A dependency whose tarball is in no cache: offline, npm ci cannot fetch it.
    const missing: Packed = { name: 'tiny-c', version: '9.9.9', files: {}, integrity: 'sha512-' + 'A'.repeat(86) + '==', tarball: '' };
    const direct = { 'tiny-a': '^1.0.0', 'tiny-c': '^9.9.9' };
    files['package.json'] = { ...(files['package.json'] as object), dependencies: direct };
    files['package-lock.json'] = lockfileFor({ name: 'demo', version: '1.0.3' }, direct, [pkg('tiny-a', '1.0.0'), pkg('tiny-b', '1.0.0'), missing]);
    const res = await upload(server.app, 'demo', '1.0.3', await makeBundle(files));
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().code).toBe('DEPLOY_ERR_INSTALL');
    expect(res.json().message).toMatch(/npm ci exited with 1:\n(.*\n)*npm error/);
    expect(res.json().message).toMatch(/ENOTCACHED|tiny-c/);
    expect(await snapshotApp(server.dataDir, 'demo')).toEqual(before);
    expect(await readdir(path.join(server.dataDir, 'tmp'))).toEqual([]);
    expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.2' });
    expect(await answerOf(hosted!)).toBe('two a+b2');
  });
});
