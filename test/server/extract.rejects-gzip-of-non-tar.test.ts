import { gzipSync } from 'node:zlib';
import { afterEach, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

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
