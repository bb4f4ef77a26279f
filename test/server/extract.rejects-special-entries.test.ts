import { afterEach, it } from 'vitest';
import { rawApp, rawTgz, type RawEntry } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each<[string, RawEntry['type']]>([
  ['a character device', 'CharacterDevice'],
  ['a block device', 'BlockDevice'],
  ['a FIFO', 'FIFO'],
])('rejects %s with DEPLOY_ERR_ENTRY_TYPE', async (_name, type) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'dev-node', type }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_ENTRY_TYPE');
});
