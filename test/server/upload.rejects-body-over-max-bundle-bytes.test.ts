import { Readable } from 'node:stream';
import { afterEach, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('answers 413 from Content-Length before reading the body', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxBundleBytes: 4096 }));
  const body = Buffer.concat([await makeBundle(appFiles('v2')), Buffer.alloc(10_000)]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 413, 'DEPLOY_ERR_BUNDLE_TOO_LARGE');
});

it('answers 413 by counting a chunked body that declares no length', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxBundleBytes: 4096 }));
  const head = await makeBundle(appFiles('v2'));
  const chunks = [head, ...Array.from({ length: 20 }, () => Buffer.alloc(1024, 1))];
  const res = await upload(server.app, 'demo', '2.0.0', Readable.from(chunks));
  await expectRejected(server, before, res, 413, 'DEPLOY_ERR_BUNDLE_TOO_LARGE');
});
