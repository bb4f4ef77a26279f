import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { get, post, testServer, TOKENS, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('serves the original bundle by version, with its sha256, to agent tokens', async () => {
  server = await testServer();
  const bundle = await makeBundle(appFiles('v1'));
  expect((await upload(server.app, 'demo', '1.0.0', bundle)).statusCode).toBe(201);
  const res = await get(server.app, '/v1/apps/demo/releases/1.0.0/bundle');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/gzip');
  expect(res.headers['x-bundle-sha256']).toBe(createHash('sha256').update(bundle).digest('hex'));
  expect(res.rawPayload).toEqual(bundle);
  const files = (await get(server.app, '/v1/apps/demo/releases/1.0.0/files', TOKENS.reader)).json();
  expect(Object.keys(files.files).sort()).toEqual(['index.js', 'lib/util.js', 'package.json']);
});

it('appends who did what, with the outcome, to audit.log', async () => {
  server = await testServer();
  await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')), { token: TOKENS.ci });
  await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('other bytes')), { token: TOKENS.ci });
  await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')));
  await post(server.app, '/v1/apps/demo/rollback', {});
  const lines = (await readFile(path.join(server.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(lines).toEqual([
    expect.objectContaining({ who: 'ci', what: 'upload', app: 'demo', version: '1.0.0', outcome: 'created', sha256: expect.any(String) }),
    expect.objectContaining({ who: 'ci', what: 'push', version: '1.0.0', outcome: 'succeeded', deploymentId: expect.any(String) }),
    expect.objectContaining({ who: 'ci', what: 'upload', version: '1.0.0', outcome: 'rejected', code: 'DEPLOY_ERR_VERSION_CONFLICT' }),
    expect.objectContaining({ who: 'admin', what: 'upload', version: '2.0.0', outcome: 'created' }),
    expect.objectContaining({ who: 'admin', what: 'push', version: '2.0.0', outcome: 'succeeded' }),
    expect.objectContaining({ who: 'admin', what: 'rollback', version: '1.0.0', outcome: 'succeeded' }),
  ]);
  for (const line of lines) expect(new Date(line.when).getTime()).toBeGreaterThan(0);
});
