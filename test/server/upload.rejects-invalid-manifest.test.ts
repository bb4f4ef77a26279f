import { afterEach, it } from 'vitest';
import { makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each<[string, Record<string, string | object>, string]>([
  ['no package.json', { 'index.js': '' }, 'DEPLOY_ERR_MANIFEST'],
  ['package.json that is not JSON', { 'package.json': '{nope', 'index.js': '' }, 'DEPLOY_ERR_MANIFEST'],
  ['an entry that does not exist', { 'package.json': { main: 'server.js' } }, 'DEPLOY_ERR_ENTRY'],
  ['an invalid mode', { 'package.json': { hotdeploy: { mode: 'fork' } }, 'index.js': '' }, 'DEPLOY_ERR_SETTINGS'],
  ['an invalid canary setting', { 'package.json': { hotdeploy: { canary: '120%' } }, 'index.js': '' }, 'DEPLOY_ERR_SETTINGS'],
  ['an invalid hotdeploy.json', { 'package.json': {}, 'hotdeploy.json': { port: 'http' }, 'index.js': '' }, 'DEPLOY_ERR_SETTINGS'],
])('rejects a bundle with %s (422) before it becomes visible', async (_name, files, code) => {
  let before;
  ({ server, before } = await serverWithRelease());
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', await makeBundle(files)), 422, code);
});
