import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['a folder where a file was', { path: 'lib/util.js/inner.js', body: 'x' }],
  ['a file where a folder was', { path: 'lib', body: 'not a folder' }],
])('rejects %s as a bad archive (422), not a disk fault, without naming server paths', async (_name, entry) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', rawTgz([...rawApp('v2'), entry]));
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_BAD_ARCHIVE');
  expect(res.json().message).not.toContain(server.dataDir);
});
