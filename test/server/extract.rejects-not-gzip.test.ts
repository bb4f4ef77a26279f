import { afterEach, expect, it } from 'vitest';
import { rawTar } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['random bytes', Buffer.from('this is not a bundle at all, just text')],
  ['an uncompressed tar', rawTar([{ path: 'package.json', body: '{}' }])],
  ['a single byte', Buffer.from([0x1f])],
])('rejects %s with DEPLOY_ERR_NOT_GZIP', async (_name, body) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', body);
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_NOT_GZIP');
  expect((await upload(server.app, 'demo', '2.0.0', body)).statusCode).toBe(422);
});
