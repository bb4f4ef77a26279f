import { afterEach, expect, it } from 'vitest';
import { deployVersion, get, post, testServer, upload, type TestServer } from '../helpers/server.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';

let server: TestServer;
afterEach(() => server.close());

async function threeReleases(): Promise<void> {
  server = await testServer();
  for (const v of ['1.0.0', '2.0.0', '3.0.0']) await deployVersion(server.app, 'demo', v);
}

it('rolls back to the release before the current one, then further back', async () => {
  await threeReleases();
  const first = await post(server.app, '/v1/apps/demo/rollback', {});
  expect(first.statusCode).toBe(200);
  expect(first.json().deployment).toMatchObject({ kind: 'rollback', version: '2.0.0', from: '3.0.0', status: 'succeeded' });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0', previous: '3.0.0' });
  const second = await post(server.app, '/v1/apps/demo/rollback', {});
  expect(second.json().deployment).toMatchObject({ version: '1.0.0' });
  const none = await post(server.app, '/v1/apps/demo/rollback', {});
  expect(none.statusCode).toBe(409);
  expect(none.json()).toMatchObject({ code: 'DEPLOY_ERR_NO_ROLLBACK_TARGET' });
});

it('rolls back to a named version, and answers a rollback without a body', async () => {
  await threeReleases();
  const named = await post(server.app, '/v1/apps/demo/rollback', { to: '1.0.0' });
  expect(named.json().deployment).toMatchObject({ version: '1.0.0', status: 'succeeded' });
  const bare = await server.app.inject({ method: 'POST', url: '/v1/apps/demo/rollback', headers: { authorization: 'Bearer admin-token-0123456789' } });
  // 1.0.0 is current now and the oldest: nothing to go back to, but the empty body itself is fine.
  expect(bare.json()).toMatchObject({ statusCode: 409, code: 'DEPLOY_ERR_NO_ROLLBACK_TARGET' });
  const emptyJson = await server.app.inject({ method: 'POST', url: '/v1/apps/demo/rollback', headers: { authorization: 'Bearer admin-token-0123456789', 'content-type': 'application/json' } });
  expect(emptyJson.json()).toMatchObject({ statusCode: 409, code: 'DEPLOY_ERR_NO_ROLLBACK_TARGET' });
  const missing = await post(server.app, '/v1/apps/demo/rollback', { to: '9.9.9' });
  expect(missing.statusCode).toBe(404);
  expect(missing.json()).toMatchObject({ code: 'DEPLOY_ERR_RELEASE_NOT_FOUND' });
});

it('activates a stored version, and treats activating the current one as a no-op', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), { query: '?activate=false' })).statusCode).toBe(201);
  const res = await post(server.app, '/v1/apps/demo/activate', { version: '2.0.0' });
  expect(res.statusCode).toBe(200);
  expect(res.json().deployment).toMatchObject({ kind: 'activate', version: '2.0.0', status: 'succeeded' });
  const again = await post(server.app, '/v1/apps/demo/activate', { version: '2.0.0' });
  expect(again.statusCode).toBe(200);
  expect(again.json()).toMatchObject({ deployment: null, release: { version: '2.0.0' } });
  const queued = await post(server.app, '/v1/apps/demo/activate?wait=false', { version: '1.0.0' });
  expect(queued.statusCode).toBe(202);
  const id = queued.json().deployment.id as string;
  expect(id).toMatch(/^[a-z0-9-]+$/);
  // The `queued` record is written beside the dispatch: a reader asking at once still finds it.
  const [one, listed] = await Promise.all([get(server.app, `/v1/deployments/${id}`), get(server.app, '/v1/deployments?app=demo')]);
  expect(one.statusCode).toBe(200);
  expect(one.json()).toMatchObject({ id, kind: 'activate', version: '1.0.0' });
  expect(listed.json().deployments.map((d: { id: string }) => d.id)).toContain(id);
});

it('validates activate and rollback bodies', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  const noVersion = await post(server.app, '/v1/apps/demo/activate', {});
  expect(noVersion.statusCode).toBe(400);
  expect(noVersion.json()).toMatchObject({ code: 'DEPLOY_ERR_INVALID_VERSION' });
  const badTo = await post(server.app, '/v1/apps/demo/rollback', { to: '../x' });
  expect(badTo.json()).toMatchObject({ statusCode: 400, code: 'DEPLOY_ERR_INVALID_VERSION' });
  const unknownApp = await post(server.app, '/v1/apps/nope/rollback', {});
  expect(unknownApp.json()).toMatchObject({ statusCode: 404, code: 'DEPLOY_ERR_APP_NOT_FOUND' });
});
