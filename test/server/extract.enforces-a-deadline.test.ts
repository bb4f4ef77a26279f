import { afterEach, it } from 'vitest';
import { buildServer } from '../../services/server/build-server.js';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, TOKEN_CONFIG, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('gives up an unpack that outlives extractTimeoutMs, and removes what it wrote', async () => {
  // 1.0.0 is deployed by a server with the default deadline; a restart over the same data sets 1 ms.
  const { server: first, before } = await serverWithRelease();
  await first.app.close();
  const app = buildServer({ dataDir: first.dataDir, tokens: TOKEN_CONFIG, logger: false, extractTimeoutMs: 1 });
  await app.ready();
  server = { app, dataDir: first.dataDir, close: async () => { await app.close(); await first.close(); } };

  const files = Array.from({ length: 3000 }, (_, i) => ({ path: `lib/${i % 30}/f${i}.js`, body: `exports.i = ${i};` }));
  const body = rawTgz([...rawApp('v2'), ...files]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_EXTRACT_TIMEOUT');
});
