import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle, rawApp, rawTgz } from '../helpers/bundles.js';
import { testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const hotdeployFile = (version: string, name: string) => path.join(server.dataDir, 'apps/demo/releases', version, '.hotdeploy', name);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const filesJson = async (version: string) => readFile(hotdeployFile(version, 'files.json'));
const exists = (file: string) => stat(file).then(() => true, () => false);

it('writes what changed since the current release beside files.json, and nothing for the first upload', async () => {
  server = await testServer();
  const v1 = { ...appFiles('one'), 'lib/old.js': 'exports.old = 1;\n' };
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(v1))).statusCode).toBe(201);
  expect(await exists(hotdeployFile('1.0.0', 'changes.json'))).toBe(false);

  const { 'lib/old.js': _gone, ...kept } = v1;
  const v2 = { ...kept, 'lib/util.js': 'exports.marker = "two";\n', 'lib/new.js': 'exports.n = 1;\n' };
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(v2))).statusCode).toBe(201);
  const v2Files = JSON.parse((await filesJson('2.0.0')).toString('utf8')).files as Record<string, string>;
  expect(JSON.parse(await readFile(hotdeployFile('2.0.0', 'changes.json'), 'utf8'))).toEqual({
    version: 1,
    base: { version: '1.0.0', files: sha256(await filesJson('1.0.0')) },
    files: sha256(await filesJson('2.0.0')),
    changed: { 'lib/new.js': v2Files['lib/new.js'], 'lib/util.js': v2Files['lib/util.js'] },
    removed: ['lib/old.js'],
    links: [],
  });
  expect(v2Files['lib/util.js']).toBe(sha256(Buffer.from('exports.marker = "two";\n')));
});

it('names the current release as the base, not the newest one stored', async () => {
  server = await testServer();
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('one')))).statusCode).toBe(201);
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('two')), { query: '?activate=false' })).statusCode).toBe(201);
  expect((await upload(server.app, 'demo', '3.0.0', await makeBundle(appFiles('three')))).statusCode).toBe(201);
  const changes = JSON.parse(await readFile(hotdeployFile('3.0.0', 'changes.json'), 'utf8'));
  expect(changes.base).toEqual({ version: '1.0.0', files: sha256(await filesJson('1.0.0')) });
  expect(Object.keys(changes.changed).sort()).toEqual(['index.js', 'lib/util.js']);
  expect(changes.removed).toEqual([]);
});

it('carries the new release\'s whole list of symlinks, as its files.json has it', async () => {
  server = await testServer();
  const link = (p: string, linkpath: string) => ({ path: `package/${p}`, type: 'SymbolicLink' as const, linkpath });
  expect((await upload(server.app, 'demo', '1.0.0', rawTgz([...rawApp('one', 'package/'), link('lib/a.js', 'util.js')]))).statusCode).toBe(201);
  const v2 = rawTgz([...rawApp('one', 'package/'), link('lib/a.js', 'util.js'), link('lib/b.js', 'util.js')]);
  expect((await upload(server.app, 'demo', '2.0.0', v2)).statusCode).toBe(201);
  const changes = JSON.parse(await readFile(hotdeployFile('2.0.0', 'changes.json'), 'utf8'));
  expect(changes.links).toEqual(['lib/a.js', 'lib/b.js']);
  expect(changes.links).toEqual(JSON.parse((await filesJson('2.0.0')).toString('utf8')).links);
  expect(changes.changed).toEqual({});
});
