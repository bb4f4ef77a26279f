import { gzipSync } from 'node:zlib';
import { afterEach, it } from 'vitest';
import { appFiles, makeBundle, rawTar } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects a .tgz cut in the middle of the gzip stream', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const whole = await makeBundle({ ...appFiles('v2'), 'big.txt': 'x'.repeat(100_000) + Math.random() });
  const cut = whole.subarray(0, Math.floor(whole.length / 2));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', cut), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('rejects a complete gzip of a tar cut inside an entry body', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const tar = rawTar([{ path: 'package.json', body: '{}' }, { path: 'index.js', body: 'x'.repeat(5000) }]);
  const cut = gzipSync(tar.subarray(0, 512 * 4));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', cut), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});
