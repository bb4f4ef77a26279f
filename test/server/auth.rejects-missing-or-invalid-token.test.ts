import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['no Authorization header', { token: null }],
  ['an unknown token', { token: 'not-a-token' }],
  ['a token of another length', { token: 'x' }],
  ['a Basic scheme', { token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } }],
  ['an empty bearer', { token: null, headers: { authorization: 'Bearer ' } }],
])('answers 401 to an upload with %s', async (_name, options) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), options);
  await expectRejected(server, before, res, 401, 'DEPLOY_ERR_UNAUTHORIZED');
});

it.each([
  ['GET', '/v1/apps'], ['GET', '/v1/apps/demo'], ['GET', '/v1/apps/demo/releases'], ['GET', '/v1/events'],
  ['GET', '/v1/apps/demo/releases/1.0.0/bundle'], ['POST', '/v1/apps/demo/rollback'], ['POST', '/v1/apps/demo/activate'],
  ['GET', '/v1/deployments/abc'],
])('answers 401 to %s %s without a token, before validating anything', async (method, url) => {
  ({ server } = await serverWithRelease());
  const res = await server.app.inject({ method: method as 'GET', url });
  expect(res.statusCode).toBe(401);
  expect(res.json()).toMatchObject({ statusCode: 401, code: 'DEPLOY_ERR_UNAUTHORIZED' });
});

it('keeps /healthz public', async () => {
  ({ server } = await serverWithRelease());
  const res = await server.app.inject({ method: 'GET', url: '/healthz' });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ status: 'ok' });
});
