import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectUnchanged, serverWithRelease, stagedBytes, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it('removes the staging directory when the client aborts mid-upload, and keeps serving', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  const bundle = await makeBundle(appFiles('v2'));
  const req = http.request({
    host: '127.0.0.1', port, method: 'PUT', path: '/v1/apps/demo/releases/2.0.0',
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip', 'content-length': String(bundle.length + 1_000_000) },
  });
  req.on('error', () => undefined);
  req.write(bundle);
  await waitFor('the upload to reach the staging directory', async () => (await stagedBytes(server.dataDir)) > 0, 10_000);
  req.destroy();
  await waitFor('the staging directory to be removed', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 0, 10_000);
  await expectUnchanged(server, 'demo', before, '1.0.0');
  const audit = await import('node:fs/promises').then((fs) => fs.readFile(path.join(server.dataDir, 'audit.log'), 'utf8'));
  expect(audit).toContain('"code":"DEPLOY_ERR_UPLOAD_ABORTED"');
});
