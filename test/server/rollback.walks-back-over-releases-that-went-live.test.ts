import { afterEach, beforeEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { deployVersion, get, post, testServer, upload, type TestServer } from '../helpers/server.js';

// One host (the service with no agent attached: a deployment succeeds with zero workers): rollback
// goes back over releases that went live, never to one stored with ?activate=false and never activated.

let server: TestServer;

beforeEach(async () => {
  server = await testServer();
});

afterEach(async () => {
  await server.close();
});

it('skips a release that never went live, and repeated rollbacks go further back instead of toggling', async () => {
  await deployVersion(server.app, 'demo', '1.0.0');
  await deployVersion(server.app, 'demo', '2.0.0');
  const stored = await upload(server.app, 'demo', '3.0.0', await makeBundle(appFiles('demo@3.0.0')), { query: '?activate=false' });
  expect(stored.statusCode).toBe(201);
  await deployVersion(server.app, 'demo', '4.0.0');
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '4.0.0', previous: '2.0.0' });
  const live = (await get(server.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string; live: boolean }) => `${r.version}:${r.live}`);
  expect(live).toEqual(['4.0.0:true', '3.0.0:false', '2.0.0:true', '1.0.0:true']);

  const first = (await post(server.app, '/v1/apps/demo/rollback', {})).json().deployment;
  expect([first.version, first.status]).toEqual(['2.0.0', 'succeeded']);
  const second = (await post(server.app, '/v1/apps/demo/rollback', {})).json().deployment;
  expect([second.version, second.status]).toEqual(['1.0.0', 'succeeded']);
  const none = await post(server.app, '/v1/apps/demo/rollback', {});
  expect([none.statusCode, none.json().code]).toEqual([409, 'DEPLOY_ERR_NO_ROLLBACK_TARGET']);
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });

  // `to` may still name any stored release, one that never went live included; it is live after.
  const named = (await post(server.app, '/v1/apps/demo/rollback', { to: '3.0.0' })).json().deployment;
  expect([named.version, named.status]).toEqual(['3.0.0', 'succeeded']);
  expect((await get(server.app, '/v1/apps/demo/releases/3.0.0')).json()).toMatchObject({ live: true });
});
