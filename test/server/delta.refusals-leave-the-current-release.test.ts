import { stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RawEntry } from '../helpers/bundles.js';
import { currentSources, expectedDigest, uploadDelta, type DeltaSpec } from '../helpers/deltas.js';
import { deployVersion, expectRejected, post, serverWithRelease, snapshotApp, TOKENS, type TestServer } from '../helpers/server.js';
import type { ServerOptions } from '../../services/server/options.js';

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
