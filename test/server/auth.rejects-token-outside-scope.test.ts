import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { deployVersion, expectRejected, get, post, serverWithRelease, TOKENS, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('answers 403 to a push with a token of another app', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), { token: TOKENS.other });
  await expectRejected(server, before, res, 403, 'DEPLOY_ERR_FORBIDDEN');
  const audit = await readFile(path.join(server.dataDir, 'audit.log'), 'utf8');
  expect(JSON.parse(audit.trim().split('\n').at(-1) as string)).toMatchObject({ who: 'other', what: 'upload', app: 'demo', version: '2.0.0', outcome: 'denied' });
});

it('answers 403 to a push with a read-only token', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), { token: TOKENS.reader });
  await expectRejected(server, before, res, 403, 'DEPLOY_ERR_FORBIDDEN');
});

it('answers 403 to a rollback or activate with a push-only token', async () => {
  ({ server } = await serverWithRelease());
  await deployVersion(server.app, 'demo', '2.0.0');
  for (const [url, body] of [['/v1/apps/demo/rollback', {}], ['/v1/apps/demo/activate', { version: '1.0.0' }]] as const) {
    const res = await post(server.app, url, body, TOKENS.ci);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'DEPLOY_ERR_FORBIDDEN' });
  }
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0' });
});

it('lets an app-scoped token push its own app, and hides other apps from it', async () => {
  ({ server } = await serverWithRelease());
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('v2')), { token: TOKENS.ci })).statusCode).toBe(201);
  expect((await upload(server.app, 'other', '1.0.0', await makeBundle(appFiles('o1')), { token: TOKENS.other })).statusCode).toBe(201);
  const apps = (await get(server.app, '/v1/apps', TOKENS.ci)).json();
  expect(apps.apps.map((a: { name: string }) => a.name)).toEqual(['demo']);
  expect((await get(server.app, '/v1/apps/other', TOKENS.ci)).statusCode).toBe(403);
  expect((await get(server.app, '/v1/apps/demo/releases/2.0.0/bundle', TOKENS.ci)).statusCode).toBe(403);
});
