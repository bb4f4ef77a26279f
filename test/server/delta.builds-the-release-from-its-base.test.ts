import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { currentSources, uploadDelta } from '../helpers/deltas.js';
import { deployVersion, get, testServer, TOKENS, upload, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

let server: TestServer;
afterEach(() => server.close());

const releaseFile = (version: string, rel: string) => path.join(server.dataDir, 'apps/demo/releases', version, rel);
const filesOf = async (version: string): Promise<Record<string, string>> =>
  JSON.parse(await readFile(releaseFile(version, '.hotdeploy/files.json'), 'utf8')).files;
const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

it('links the unchanged files from the base, writes the changed ones, drops the removed ones, and deploys it', async () => {
  server = await testServer();
  const v1 = { ...appFiles('demo@1.0.0'), 'lib/old.js': 'exports.old = 1;\n' };
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(v1))).statusCode).toBe(201);

  const res = await uploadDelta(server.app, 'demo', '2.0.0', {
    base: '1.0.0', changed: { 'index.js': 'module.exports = (req, res) => res.end("demo@2.0.0");\n', 'lib/new.js': 'exports.n = 2;\n' },
    removed: ['lib/old.js'],
  });
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json()).toMatchObject({ created: true, release: { version: '2.0.0', delta: { base: '1.0.0' }, files: 4 }, deployment: { status: 'succeeded' } });

  expect(Object.keys(await filesOf('2.0.0')).sort()).toEqual(['index.js', 'lib/new.js', 'lib/util.js', 'package.json']);
  expect(await readFile(releaseFile('2.0.0', 'index.js'), 'utf8')).toContain('demo@2.0.0');
  // Unchanged files are the base's own inodes; the reserved folder holds the service's files only.
  expect((await stat(releaseFile('2.0.0', 'lib/util.js'))).ino).toBe((await stat(releaseFile('1.0.0', 'lib/util.js'))).ino);
  await expect(stat(releaseFile('2.0.0', '.hotdeploy/removed.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  expect(JSON.parse(await readFile(releaseFile('2.0.0', '.hotdeploy/changes.json'), 'utf8'))).toMatchObject({
    base: { version: '1.0.0' }, removed: ['lib/old.js'], changed: { 'index.js': expect.any(String), 'lib/new.js': sha256('exports.n = 2;\n') },
  });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0', previous: '1.0.0' });
});

it('gives a delta-made release the same identity, manifest and full .tgz as a full bundle of the same files', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  const changed = { 'lib/util.js': 'exports.marker = "two";\n' };
  expect((await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', changed })).statusCode).toBe(201);
  const sameFiles = await makeBundle({ ...appFiles('demo@1.0.0'), ...changed });
  // The same version with the same files, however they arrive, is the same release: 200, not a 409.
  const again = await upload(server.app, 'demo', '2.0.0', sameFiles);
  expect(again.statusCode, again.body).toBe(200);
  expect(again.json()).toMatchObject({ created: false });
  const other = await upload(server.app, 'demo', '2.0.0', await makeBundle({ ...appFiles('demo@1.0.0'), 'lib/util.js': 'other' }));
  expect(other.statusCode).toBe(409);
  expect(other.json().code).toBe('DEPLOY_ERR_VERSION_CONFLICT');
  // A full bundle of the same files stored as 3.0.0 has the very same files.json.
  expect((await upload(server.app, 'demo', '3.0.0', sameFiles, { query: '?activate=false' })).statusCode).toBe(201);
  expect(await filesOf('2.0.0')).toEqual(await filesOf('3.0.0'));

  // Download as a full .tgz, built on demand: checked by its sha256, unpacking to the release's files.
  const bundle = await server.app.inject({ method: 'GET', url: '/v1/apps/demo/releases/2.0.0/bundle', headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(bundle.statusCode).toBe(200);
  expect(bundle.headers['x-bundle-sha256']).toBe(sha256(bundle.rawPayload));
  const { dir, cleanup } = await tempDir('hotdeploy-full-');
  try {
    await import('node:fs/promises').then((fs) => fs.writeFile(path.join(dir, 'b.tgz'), bundle.rawPayload));
    const entries: Record<string, string> = {};
    await tar.t({ file: path.join(dir, 'b.tgz'), onReadEntry: (e) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () => { entries[e.path] = sha256(Buffer.concat(chunks)); });
    } });
    const files = await filesOf('2.0.0');
    expect(entries).toEqual(Object.fromEntries(Object.entries(files).map(([rel, hash]) => [`package/${rel}`, hash])));
  } finally {
    await cleanup();
  }

  // Rollback to the release the delta was built on, and back to the delta-made one, both by the usual path.
  expect((await server.app.inject({ method: 'POST', url: '/v1/apps/demo/activate', headers: { authorization: `Bearer ${TOKENS.admin}` },
    payload: { version: '1.0.0' } })).statusCode).toBe(200);
  expect((await server.app.inject({ method: 'POST', url: '/v1/apps/demo/rollback', headers: { authorization: `Bearer ${TOKENS.admin}` },
    payload: { to: '2.0.0' } })).statusCode).toBe(200);
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0' });
});

it('tells a push token the current release\'s files with an ETag, answering 304 while they are unchanged', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  const first = await get(server.app, '/v1/apps/demo/files', TOKENS.ci);
  expect(first.statusCode).toBe(200);
  const sources = await currentSources(server.app, 'demo');
  expect(first.json()).toEqual(sources);
  expect(sources).toMatchObject({ version: '1.0.0', links: [], files: { 'index.js': expect.any(String), 'package.json': expect.any(String) } });
  expect(first.headers.etag).toBe(`"${first.json().manifestSha256}"`);
  const unchanged = await server.app.inject({ method: 'GET', url: '/v1/apps/demo/files',
    headers: { authorization: `Bearer ${TOKENS.ci}`, 'if-none-match': first.headers.etag as string } });
  expect(unchanged.statusCode).toBe(304);
  expect(unchanged.headers['x-hotdeploy-release']).toBe('1.0.0');
  expect(unchanged.body).toBe('');
  // A delta that changes nothing else leaves the per-version endpoint's ETag its own (files.json's bytes).
  const perVersion = await get(server.app, '/v1/apps/demo/releases/1.0.0/files', TOKENS.ci);
  expect(perVersion.statusCode).toBe(200);
  expect(perVersion.headers.etag).toBe(`"${sha256(await readFile(releaseFile('1.0.0', '.hotdeploy/files.json')))}"`);
  // A token for another app learns nothing.
  expect((await get(server.app, '/v1/apps/demo/files', TOKENS.other)).statusCode).toBe(403);
});

it('answers a delta retried after it was stored with the release (200), even though its base is no longer current', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  const base = await currentSources(server.app, 'demo');
  const spec = { base: '1.0.0', changed: { 'lib/util.js': 'exports.marker = 2;\n' } };
  expect((await uploadDelta(server.app, 'demo', '2.0.0', spec)).statusCode).toBe(201);
  const { expectedDigest } = await import('../helpers/deltas.js');
  const retried = await uploadDelta(server.app, 'demo', '2.0.0', { ...spec, declare: expectedDigest(base, spec) });
  expect(retried.statusCode, retried.body).toBe(200);
  expect(retried.json()).toMatchObject({ created: false, deployment: null });
});
