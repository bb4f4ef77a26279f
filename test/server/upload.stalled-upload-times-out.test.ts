import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectUnchanged, serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it('answers 408 to an upload that stops sending, and closes the connection', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ uploadIdleTimeoutMs: 300 }));
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  const bundle = await makeBundle(appFiles('v2'));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'PUT', path: '/v1/apps/demo/releases/2.0.0',
      headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip', 'content-length': String(bundle.length * 2) },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    // Half the declared body, then silence.
    req.write(bundle);
  });
  const res = await response;
  expect(res.status).toBe(408);
  expect(JSON.parse(res.body)).toMatchObject({ statusCode: 408, code: 'DEPLOY_ERR_UPLOAD_TIMEOUT' });
  await waitFor('the staging directory to be removed', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 0, 10_000);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
