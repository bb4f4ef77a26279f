import { afterEach, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects a bundle with more entries than maxFiles', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxFiles: 20 }));
  const many = Array.from({ length: 30 }, (_, i) => ({ path: `lib/f${i}.js`, body: `exports.i = ${i};` }));
  const body = rawTgz([...rawApp('v2'), ...many]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_TOO_MANY_FILES');
});
