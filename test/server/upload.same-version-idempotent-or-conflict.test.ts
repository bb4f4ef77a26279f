import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, get, serverWithRelease, snapshotApp, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('answers 409 for the same version with other bytes', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('something else')));
  await expectRejected(server, before, res, 409, 'DEPLOY_ERR_VERSION_CONFLICT');
  expect(res.json<{ message: string }>().message).toMatch(/demo@1\.0\.0 holds files with digest [0-9a-f]{12}, these have [0-9a-f]{12}; push them as a new version$/);
});

it('answers 200 without a new deployment for the same bytes of the current version', async () => {
  ({ server } = await serverWithRelease());
  const before = await snapshotApp(server.dataDir, 'demo');
  const deploymentsBefore = await readdir(path.join(server.dataDir, 'deployments'));
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('demo@1.0.0')));
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toMatchObject({ created: false, deployment: null, release: { version: '1.0.0' } });
  expect(await snapshotApp(server.dataDir, 'demo')).toEqual(before);
  expect(await readdir(path.join(server.dataDir, 'deployments'))).toEqual(deploymentsBefore);
});

it('re-activates a stored version that is not current when its same bytes are pushed again', async () => {
  ({ server } = await serverWithRelease());
  const v2 = await makeBundle(appFiles('demo@2.0.0'));
  expect((await upload(server.app, 'demo', '2.0.0', v2)).statusCode).toBe(201);
  expect((await get(server.app, '/v1/apps/demo')).json().current).toBe('2.0.0');
  expect((await server.app.inject({ method: 'POST', url: '/v1/apps/demo/rollback', headers: { authorization: 'Bearer admin-token-0123456789' } })).statusCode).toBe(200);
  const again = await upload(server.app, 'demo', '2.0.0', v2);
  expect(again.statusCode).toBe(200);
  expect(again.json()).toMatchObject({ created: false, deployment: { kind: 'push', status: 'succeeded', version: '2.0.0', from: '1.0.0' } });
});
