import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['an absolute target', '/etc/passwd'],
  ['a .. target', '../../../../etc/passwd'],
])('rejects a hard link with %s', async (_name, target) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/passwd', type: 'Link', linkpath: target }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_LINK_ESCAPE');
});

it('accepts a hard link to a file of the release', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/same.js', type: 'Link', linkpath: 'lib/util.js' }]);
  expect((await upload(server.app, 'demo', '2.0.0', body)).statusCode).toBe(201);
  const hashes = JSON.parse(await readFile(path.join(server.dataDir, 'apps/demo/releases/2.0.0/.hotdeploy/files.json'), 'utf8'));
  expect(hashes.files['lib/same.js']).toMatch(/^[0-9a-f]{64}$/);
  expect(hashes.files['lib/same.js']).toBe(hashes.files['lib/util.js']);
});
