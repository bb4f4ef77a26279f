import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { rawApp, rawTgz, type RawEntry } from '../helpers/bundles.js';
import { currentSources, expectedDigest, uploadDelta, type DeltaSpec } from '../helpers/deltas.js';
import { deployVersion, expectRejected, expectUnchanged, post, serverWithRelease, snapshotApp, stagedBytes, testServer, TOKENS, upload,
  type TestServer } from '../helpers/server.js';
import { writeTree } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import type { ServerOptions } from '../../services/server/options.js';
import { manifestDigest } from '../../services/server/source-manifest.js';

let server: TestServer;
afterEach(() => server.close());

const deep = Array.from({ length: 70 }, (_, i) => `d${i}`).join('/');

const cases: Array<[string, DeltaSpec, number, string, Partial<ServerOptions>?]> = [
  ['a base that does not exist', { base: '0.9.0', changed: { 'lib/util.js': 'x' }, declare: '0'.repeat(64) }, 409, 'DEPLOY_ERR_DELTA_BASE_NOT_FOUND'],
  ['a declared manifest the base plus the delta do not make', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, declare: 'a'.repeat(64) }, 422, 'DEPLOY_ERR_DELTA_MISMATCH'],
  ['the removal of a path the base lacks', { base: '1.0.0', removed: ['lib/missing.js'] }, 422, 'DEPLOY_ERR_DELTA_UNKNOWN_PATH'],
  ['the removal of the reserved .hotdeploy/files.json', { base: '1.0.0', removed: ['.hotdeploy/files.json'], declare: 'b'.repeat(64) }, 422, 'DEPLOY_ERR_RESERVED_PATH'],
  ['a file under the reserved .hotdeploy/', { base: '1.0.0', extra: [{ path: '.hotdeploy/files.json', body: '{"files":{}}' }], declare: 'c'.repeat(64) }, 422, 'DEPLOY_ERR_RESERVED_PATH'],
  ['a removed path that climbs out with ..', { base: '1.0.0', removed: ['../outside.js'], declare: 'd'.repeat(64) }, 422, 'DEPLOY_ERR_UNSAFE_PATH'],
  ['a removed path spelled two ways', { base: '1.0.0', removed: ['./lib/util.js'], declare: 'd'.repeat(64) }, 422, 'DEPLOY_ERR_UNSAFE_PATH'],
  ['a .. entry path', { base: '1.0.0', extra: [{ path: '../escaped.js', body: 'pwned' }], declare: 'e'.repeat(64) }, 422, 'DEPLOY_ERR_UNSAFE_PATH'],
  ['an absolute entry path', { base: '1.0.0', extra: [{ path: '/tmp/hotdeploy-delta-escape.js', body: 'pwned' }], declare: 'e'.repeat(64) }, 422, 'DEPLOY_ERR_UNSAFE_PATH'],
  ['a symlink out of the release', { base: '1.0.0', extra: [{ path: 'lib/out', type: 'SymbolicLink', linkpath: '../../etc' }], declare: 'f'.repeat(64) }, 422, 'DEPLOY_ERR_LINK_ESCAPE'],
  ['a hard link to a file of the base (not of the delta)', { base: '1.0.0', extra: [{ path: 'copy.js', type: 'Link', linkpath: 'index.js' }], declare: 'f'.repeat(64) }, 422, 'DEPLOY_ERR_BAD_ARCHIVE'],
  ['a device entry', { base: '1.0.0', extra: [{ path: 'dev', type: 'CharacterDevice' } as RawEntry], declare: 'f'.repeat(64) }, 422, 'DEPLOY_ERR_ENTRY_TYPE'],
  ['a file where the base keeps a folder', { base: '1.0.0', changed: { lib: 'not a folder' } }, 422, 'DEPLOY_ERR_DELTA_MISMATCH'],
  ['a delta nesting deeper than maxDepth', { base: '1.0.0', changed: { [`${deep}/x.js`]: 'x' } }, 422, 'DEPLOY_ERR_TOO_DEEP'],
  ['more files than maxFiles with the base\'s', { base: '1.0.0', changed: { 'a.js': '1', 'b.js': '2', 'c.js': '3' } }, 422, 'DEPLOY_ERR_TOO_MANY_FILES', { maxFiles: 5 }],
  ['more bytes than maxUnpackedBytes with the base\'s', { base: '1.0.0', changed: { 'big.js': 'x'.repeat(300) } }, 413, 'DEPLOY_ERR_UNPACKED_TOO_LARGE', { maxUnpackedBytes: 400 }],
  ['a delta that removes package.json', { base: '1.0.0', removed: ['package.json'] }, 422, 'DEPLOY_ERR_MANIFEST'],
  ['a body that is not gzip', { base: '1.0.0', body: Buffer.from('not gzip at all'), declare: 'a'.repeat(64) }, 422, 'DEPLOY_ERR_NOT_GZIP'],
  ['a body unlike its X-Bundle-Sha256', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, headers: { 'x-bundle-sha256': '0'.repeat(64) } }, 400, 'DEPLOY_ERR_SHA256_MISMATCH'],
  ['a canary size it cannot read (checked before the delta is read)', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, query: '?canary=x' }, 400, 'DEPLOY_ERR_CANARY'],
  ['a canary on a delta that is not activated', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, query: '?canary=1&activate=false' }, 400, 'DEPLOY_ERR_CANARY'],
  ['a strategy it does not know', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, query: '?strategy=sideways' }, 400, 'DEPLOY_ERR_VALIDATION'],
  ['a base that is no version name (a path)', { base: '../other/1.0.0', changed: { 'lib/util.js': 'x' }, declare: '0'.repeat(64) }, 400, 'DEPLOY_ERR_VALIDATION'],
  ['a base named with dots that is no stored version', { base: '1..0', changed: { 'lib/util.js': 'x' }, declare: '0'.repeat(64) }, 409, 'DEPLOY_ERR_DELTA_BASE_NOT_FOUND'],
  ['a request without the manifest digest', { base: '1.0.0', changed: { 'lib/util.js': 'x' }, headers: { 'x-hotdeploy-manifest-sha256': 'nope' } }, 400, 'DEPLOY_ERR_VALIDATION'],
];

describe('a refused delta changes nothing deployed', () => {
  it.each(cases)('refuses %s', async (_name, spec, statusCode, code, options) => {
    let before;
    ({ server, before } = await serverWithRelease(options));
    await expectRejected(server, before, await uploadDelta(server.app, 'demo', '2.0.0', spec), statusCode, code);
  });

  it('refuses a token for another app before reading the delta', async () => {
    let before;
    ({ server, before } = await serverWithRelease());
    const res = await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', declare: '0'.repeat(64), token: TOKENS.other });
    await expectRejected(server, before, res, 403, 'DEPLOY_ERR_FORBIDDEN');
  });

  it('refuses a delta whose base is no longer the current release (someone else pushed), with the code a client retries on', async () => {
    ({ server } = await serverWithRelease());
    await deployVersion(server.app, 'demo', '1.1.0');
    expect((await post(server.app, '/v1/apps/demo/activate', { version: '1.0.0' })).statusCode).toBe(200);
    const before = await snapshotApp(server.dataDir, 'demo');
    // 1.1.0 exists but is not current: the client's diff is against a release that no longer serves.
    const res = await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.1.0', changed: { 'lib/util.js': 'x' }, declare: '0'.repeat(64) });
    await expectRejected(server, before, res, 409, 'DEPLOY_ERR_DELTA_BASE_NOT_CURRENT');
  });
});

it('strips setuid and setgid bits from a delta\'s files as from a bundle\'s', async () => {
  ({ server } = await serverWithRelease());
  const script = '#!/bin/sh\n';
  const declare = expectedDigest(await currentSources(server.app, 'demo'), { changed: { 'run.sh': script } });
  const res = await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', extra: [{ path: 'run.sh', body: script, mode: 0o6755 }], declare });
  expect(res.statusCode, res.body).toBe(201);
  const { mode } = await stat(path.join(server.dataDir, 'apps/demo/releases/2.0.0/run.sh'));
  expect(mode & 0o7000).toBe(0);
  expect(mode & 0o100).toBe(0o100);
});

it('refuses a delta link whose .. climbs out through a link the base keeps, and reads nothing through it', async () => {
  server = await testServer();
  // The base's d1/d2/d3/top -> ../../.. is the release itself: inside, and kept by the delta.
  expect((await upload(server.app, 'demo', '1.0.0', rawTgz([...rawApp('demo@1.0.0'),
    { path: 'd1/d2/d3/top', type: 'SymbolicLink', linkpath: '../../..' }]))).statusCode).toBe(201);
  const before = await snapshotApp(server.dataDir, 'demo');
  await writeTree(server.dataDir, { 'outside.json': { name: 'demo', version: '6.6.6', main: 'index.js', hotdeploy: { port: 0 } } });
  // `d1/d2/d3/top/../../..` is d1 on paper; followed, it is the staged release's ../../.. (the data directory).
  const { files, links } = await currentSources(server.app, 'demo');
  const { 'package.json': _replaced, ...kept } = files;
  const res = await uploadDelta(server.app, 'demo', '2.0.0', {
    base: '1.0.0', extra: [{ path: 'package.json', type: 'SymbolicLink', linkpath: 'd1/d2/d3/top/../../../outside.json' }],
    declare: manifestDigest({ files: kept, links: [...links, 'package.json'] }),
  });
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_LINK_ESCAPE');
});

it('refuses a removal list longer than a list of every path of the base before reading it, and takes one written out at length', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const base = await currentSources(server.app, 'demo');
  const declare = expectedDigest(base, { removed: ['lib/util.js'] });
  // JSON a service would parse in one go on its event loop: here 4 MiB of spaces, up to maxUnpackedBytes in general.
  const padded = `[${' '.repeat(4 * 1024 * 1024)}"lib/util.js"]`;
  const res = await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', extra: [{ path: '.hotdeploy/removed.json', body: padded }], declare });
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_BAD_ARCHIVE');
  // Indented, every character escaped: still well inside the bound.
  const escaped = JSON.stringify(['lib/util.js'], null, 2).replace(/[a-z./]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const ok = await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', extra: [{ path: '.hotdeploy/removed.json', body: escaped }], declare });
  expect(ok.statusCode, ok.body).toBe(201);
  await expect(stat(path.join(server.dataDir, 'apps/demo/releases/2.0.0/lib/util.js'))).rejects.toMatchObject({ code: 'ENOENT' });
});

it('lets a written file win over its own removal only when the declared manifest says so', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const base = await currentSources(server.app, 'demo');
  const spec = { base: '1.0.0', changed: { 'lib/util.js': 'exports.marker = 2;\n' }, removed: ['lib/util.js'] };
  // A client that meant the removal declares a manifest without the file: the result is not that.
  const res = await uploadDelta(server.app, 'demo', '2.0.0', { ...spec, declare: expectedDigest(base, { removed: ['lib/util.js'] }) });
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_DELTA_MISMATCH');
});

it('refuses a delta whose base was pruned while it arrived, with the code a client retries on', async () => {
  server = await testServer({ keep: 1 });
  await deployVersion(server.app, 'demo', '1.0.0');
  const spec = { base: '1.0.0', changed: { 'lib/util.js': 'exports.marker = 2;\n' } };
  const declare = expectedDigest(await currentSources(server.app, 'demo'), spec);
  const tgz = rawTgz(Object.entries(spec.changed).map(([p, body]) => ({ path: p, body })));
  const body = new PassThrough();
  const answer = uploadDelta(server.app, 'demo', '2.0.0', { ...spec, declare, body });
  body.write(tgz.subarray(0, 20));
  await waitFor('the delta to be staged', async () => (await stagedBytes(server.dataDir)) > 0);
  // Two pushes meanwhile: 1.0.0 is neither current nor previous, and retention removes it.
  await deployVersion(server.app, 'demo', '1.1.0');
  await deployVersion(server.app, 'demo', '1.2.0');
  await waitFor('1.0.0 to be pruned', async () => !(await stat(path.join(server.dataDir, 'apps/demo/releases/1.0.0')).catch(() => false))
    && (await readdir(path.join(server.dataDir, 'tmp'))).length === 1);
  const before = await snapshotApp(server.dataDir, 'demo');
  body.end(tgz.subarray(20));
  const res = await answer;
  expect(res.statusCode, res.body).toBe(409);
  expect(res.json()).toEqual({ statusCode: 409, code: 'DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', message: expect.any(String) });
  await expectUnchanged(server, 'demo', before, '1.2.0');
});
