import { afterEach, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['a .. path', '../escaped.js'],
  ['a .. path in the middle', 'lib/../../escaped.js'],
  ['an absolute path', '/tmp/hotdeploy-absolute-escape.js'],
  ['a Windows drive path', 'C:/escaped.js'],
])('rejects %s with DEPLOY_ERR_UNSAFE_PATH', async (_name, entryPath) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: entryPath, body: 'pwned' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_UNSAFE_PATH');
});
