import { createHash } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects a bundle whose bytes do not match X-Bundle-Sha256', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = await makeBundle(appFiles('v2'));
  const other = createHash('sha256').update('something else').digest('hex');
  const res = await upload(server.app, 'demo', '2.0.0', body, { headers: { 'x-bundle-sha256': other } });
  await expectRejected(server, before, res, 400, 'DEPLOY_ERR_SHA256_MISMATCH');
});

it('rejects a malformed X-Bundle-Sha256 with DEPLOY_ERR_VALIDATION', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), { headers: { 'x-bundle-sha256': 'abc' } });
  await expectRejected(server, before, res, 400, 'DEPLOY_ERR_VALIDATION');
});

it('accepts the matching digest in upper case', async () => {
  ({ server } = await serverWithRelease());
  const body = await makeBundle(appFiles('v2'));
  const digest = createHash('sha256').update(body).digest('hex').toUpperCase();
  expect((await upload(server.app, 'demo', '2.0.0', body, { headers: { 'x-bundle-sha256': digest } })).statusCode).toBe(201);
});
