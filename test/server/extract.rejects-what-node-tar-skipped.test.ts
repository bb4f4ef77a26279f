import { gzipSync } from 'node:zlib';
import { afterEach, it } from 'vitest';
import { rawApp, rawTar, rewriteChecksum, tarBlock as block } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

// The unpacker's own tar reader (tar-reader.ts) refuses what node-tar's Parser skipped or read on
// past: each case beside a valid app, and the release already deployed still serves.

let server: TestServer;
afterEach(() => server.close());

/** The valid app's entries, without rawTar's two end blocks, so more entries can follow. */
function appEntries(): Buffer {
  const tar = rawTar(rawApp('v2'));
  return tar.subarray(0, tar.length - 1024);
}

const END = Buffer.alloc(1024);

it('rejects a sparse file (node-tar skipped it quietly) with DEPLOY_ERR_ENTRY_TYPE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const sparse = block({ path: 'holes.bin', type: 'File', size: 4, mode: 0o644 }, Buffer.from('data'));
  sparse[156] = 0x53;
  rewriteChecksum(sparse);
  const body = gzipSync(Buffer.concat([appEntries(), sparse, END]));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_ENTRY_TYPE');
});

it('rejects an extended header over 1 MiB (node-tar ignored it) with DEPLOY_ERR_BAD_ARCHIVE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const pax = block({ path: 'PaxHeader/big', type: 'ExtendedHeader', size: 2 * 1024 * 1024 }, Buffer.alloc(2 * 1024 * 1024, 0x61));
  const body = gzipSync(Buffer.concat([appEntries(), pax, block({ path: 'after.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('a')), END]));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('rejects a pax size that is not a number (node-tar fell back to the header\'s) with DEPLOY_ERR_BAD_ARCHIVE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const record = Buffer.from('13 size=many\n');
  const pax = block({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: record.length }, record);
  const body = gzipSync(Buffer.concat([appEntries(), pax, block({ path: 'x.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('x')), END]));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('rejects a tar stream cut inside a header (node-tar dropped the piece) with DEPLOY_ERR_BAD_ARCHIVE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const next = block({ path: 'more.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('m'));
  const body = gzipSync(Buffer.concat([appEntries(), next.subarray(0, 300)]));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});
