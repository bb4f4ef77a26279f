import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('rejects entries nested deeper than maxDepth', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxDepth: 8 }));
  const deep = `${Array.from({ length: 12 }, (_, i) => `d${i}`).join('/')}/leaf.js`;
  const body = rawTgz([...rawApp('v2'), { path: deep, body: 'x' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_TOO_DEEP');
});

it('caps maxDepth at 64 whatever is configured (400 levels take seconds to extract)', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxDepth: 10_000 }));
  const deep = `${Array.from({ length: 400 }, () => 'd').join('/')}/leaf.js`;
  const started = Date.now();
  const body = rawTgz([...rawApp('v2'), { path: deep, body: 'x' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_TOO_DEEP');
  expect(Date.now() - started).toBeLessThan(10_000);
});
