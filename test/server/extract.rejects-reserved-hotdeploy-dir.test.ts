import { afterEach, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects a bundle bringing its own top-level .hotdeploy/ (the file-hash manifest lives there)', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2', 'package/'), { path: 'package/.hotdeploy/files.json', body: '{"files":{}}' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_RESERVED_PATH');
});
