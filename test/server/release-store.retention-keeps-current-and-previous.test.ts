import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { deployVersion, get, post, testServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const versions = async () => (await get(server.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string }) => r.version);

it('keeps the newest `keep` releases, and never the current or previous one', async () => {
  server = await testServer({ keep: 2 });
  for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) await deployVersion(server.app, 'demo', v);
  expect(await versions()).toEqual(['4.0.0', '3.0.0']);
  const appDir = path.join(server.dataDir, 'apps/demo');
  expect((await readdir(path.join(appDir, 'releases'))).sort()).toEqual(['3.0.0', '4.0.0']);
  expect(await readdir(path.join(appDir, 'bundles'))).toHaveLength(2);

  // After a rollback to 3.0.0, 4.0.0 is previous: both stay while newer releases arrive.
  await post(server.app, '/v1/apps/demo/rollback', {});
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '3.0.0', previous: '4.0.0' });
  await deployVersion(server.app, 'demo', '5.0.0');
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '5.0.0', previous: '3.0.0' });
  // 3.0.0 is older than the newest two but is previous now.
  expect(await versions()).toEqual(['5.0.0', '4.0.0', '3.0.0']);
  await deployVersion(server.app, 'demo', '6.0.0');
  expect(await versions()).toEqual(['6.0.0', '5.0.0']);
});
