import { afterEach, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['Demo', '2.0.0', 'DEPLOY_ERR_INVALID_APP'],
  ['-demo', '2.0.0', 'DEPLOY_ERR_INVALID_APP'],
  ['a'.repeat(64), '2.0.0', 'DEPLOY_ERR_INVALID_APP'],
  ['de_mo', '2.0.0', 'DEPLOY_ERR_INVALID_APP'],
  ['demo', '-1.0', 'DEPLOY_ERR_INVALID_VERSION'],
  ['demo', '.hidden', 'DEPLOY_ERR_INVALID_VERSION'],
  ['demo', 'v%2F1', 'DEPLOY_ERR_INVALID_VERSION'],
  ['demo', '1'.repeat(65), 'DEPLOY_ERR_INVALID_VERSION'],
  ['demo', 'a%20b', 'DEPLOY_ERR_INVALID_VERSION'],
])('rejects app %j version %j with 400', async (name, version, code) => {
  let before;
  ({ server, before } = await serverWithRelease());
  await expectRejected(server, before, await upload(server.app, name, version, await makeBundle(appFiles('x'))), 400, code);
});
