import { afterAll, beforeAll, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
let before: Record<string, string>;
beforeAll(async () => { ({ server, before } = await serverWithRelease()); });
afterAll(() => server.close());

// Read before a byte of the bundle: a refused canary stores and deploys nothing.
it.each([
  ['canary=-1', 'DEPLOY_ERR_CANARY'], ['canary=NaN', 'DEPLOY_ERR_CANARY'], ['canary=1e3', 'DEPLOY_ERR_CANARY'], ['canary=0x10', 'DEPLOY_ERR_CANARY'],
  ['canary=1.5', 'DEPLOY_ERR_CANARY'], ['canary=1001', 'DEPLOY_ERR_CANARY'], ['canary=101%25', 'DEPLOY_ERR_CANARY'], ['canary=', 'DEPLOY_ERR_CANARY'],
  ['canary=1&canaryWatchMs=-5', 'DEPLOY_ERR_CANARY'], ['canary=1&canaryWatchMs=NaN', 'DEPLOY_ERR_CANARY'], ['canary=1&canaryWatchMs=99', 'DEPLOY_ERR_CANARY'],
  ['canary=1&canaryWatchMs=86400001', 'DEPLOY_ERR_CANARY'], ['canary=1&canaryWatchMs=1e5', 'DEPLOY_ERR_CANARY'], ['canary=1&canaryWatchMs=', 'DEPLOY_ERR_CANARY'],
  ['canary=1&canaryWatchMs=99999999999999999', 'DEPLOY_ERR_VALIDATION'], ['canary=1&canary=2', 'DEPLOY_ERR_VALIDATION'],
  ['canary=1&canaryWatchMs=100&canaryWatchMs=200', 'DEPLOY_ERR_VALIDATION'], [`canary=${'1'.repeat(17)}`, 'DEPLOY_ERR_VALIDATION'],
])('refuses ?%s with 400 %s, and changes nothing', async (query, code) => {
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('demo@2.0.0')), { query: `?${query}` });
  await expectRejected(server, before, res, 400, code);
});
