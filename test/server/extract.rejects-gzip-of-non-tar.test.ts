import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, stagedBytes, upload, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects gzip data that is not a tar archive with DEPLOY_ERR_BAD_ARCHIVE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = gzipSync(Buffer.from('{"name":"not a tar"}\n'.repeat(200)));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('rejects a .tgz gzipped once more (node-tar would inflate it again) with DEPLOY_ERR_BAD_ARCHIVE', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = gzipSync(rawTgz(rawApp('v2')));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('refuses the gzip inside the gzip also when the inner gzip\'s first byte reaches the writer alone', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  // Level 0: stored deflate blocks, which zlib inflates as far as the bytes go. The first piece is
  // the gzip header (10 bytes), a stored block's header (5) and one byte of the inner gzip.
  const body = gzipSync(gzipSync(rawTgz(rawApp('v2'))), { level: 0 });
  const stream = new PassThrough();
  stream.write(body.subarray(0, 16));
  const answer = upload(server.app, 'demo', '2.0.0', stream);
  // The rest follows once that piece reached the staging file: it went to the unpacker, and its
  // byte to the writer, alone.
  await waitFor('the first piece in the staging directory', async () => (await stagedBytes(server.dataDir)) > 0);
  stream.end(body.subarray(16));
  const res = await answer;
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_BAD_ARCHIVE');
  // Refused by the writer's own check, not left to how node-tar reads a split first block.
  expect(res.json().message).toMatch(/a gzip inside the gzip/);
});
