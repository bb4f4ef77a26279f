import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { NO_AGENT_PLAN } from '../../services/server/routes/plan.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { appFiles, makeBundle, rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, expectUnchanged, serverWithRelease, TOKENS, upload, type TestServer } from '../helpers/server.js';

// `POST /v1/apps/:app/plan` without PM2: the bundle goes through the upload's checks and limits,
// with the upload's codes, and no plan (good or bad) leaves anything in the data directory.

let server: TestServer;
afterEach(() => server.close());

function plan(app: FastifyInstance, name: string, body: Buffer, token: string | null = TOKENS.admin,
  headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST', url: `/v1/apps/${name}/plan`, payload: body,
    headers: { 'content-type': 'application/gzip', ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers },
  });
}

async function auditOf(dataDir: string): Promise<Array<{ who: string; what: string; outcome: string; code?: string }>> {
  return (await readFile(path.join(dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
}

it('with no agent attached: 200, no hosts, says why; nothing stored, no staging left', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await plan(server.app, 'demo', await makeBundle(appFiles('demo@2.0.0')));
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toMatchObject({ app: 'demo', current: '1.0.0', hosts: [], unplanned: [], note: NO_AGENT_PLAN, manifest: { entry: 'index.js' } });
  expect(res.json().bundle).toMatchObject({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), files: 3 });
  await expectUnchanged(server, 'demo', before, '1.0.0');
  expect(await readdir(path.join(server.dataDir, 'deployments'))).toHaveLength(1);
  expect((await auditOf(server.dataDir)).at(-1)).toMatchObject({ who: 'admin', what: 'plan', outcome: 'planned' });
});

it('an agent that cannot dry-run is listed as unplanned, and is never asked to activate', async () => {
  const agent = new ScriptedAgent('remote');
  let before;
  ({ server, before } = await serverWithRelease({ agents: [agent] }));
  const requests = agent.requests.length;
  const res = await plan(server.app, 'demo', await makeBundle(appFiles('demo@2.0.0')));
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toMatchObject({ hosts: [], unplanned: [{ host: 'remote', reason: expect.stringContaining('cannot dry-run') }] });
  expect(agent.requests).toHaveLength(requests);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});

it.each<[string, () => Promise<Buffer>, number, string]>([
  ['not gzip', async () => Buffer.from('plain text'), 422, 'DEPLOY_ERR_NOT_GZIP'],
  ['an entry climbing out with ..', async () => rawTgz([...rawApp('x'), { path: '../escape.js', body: 'x' }]), 422, 'DEPLOY_ERR_UNSAFE_PATH'],
  ['a symlink leaving the release', async () => rawTgz([...rawApp('x'), { path: 'out', type: 'SymbolicLink', linkpath: '../../etc' }]), 422, 'DEPLOY_ERR_LINK_ESCAPE'],
  ['no package.json', () => makeBundle({ 'index.js': '' }), 422, 'DEPLOY_ERR_MANIFEST'],
  ['a reserved .hotdeploy/ folder', () => makeBundle({ ...appFiles('x'), '.hotdeploy/files.json': '{}' }), 422, 'DEPLOY_ERR_RESERVED_PATH'],
])('a bundle with %s gets the upload\'s code, and nothing changes', async (_name, bundle, statusCode, code) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = await bundle();
  const uploaded = await upload(server.app, 'demo', '3.0.0', body);
  expect([uploaded.statusCode, uploaded.json().code]).toEqual([statusCode, code]);
  await expectRejected(server, before, await plan(server.app, 'demo', body), statusCode, code);
  expect((await auditOf(server.dataDir)).at(-1)).toMatchObject({ what: 'plan', outcome: 'rejected', code });
});

it('over maxBundleBytes: 413 like an upload', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxBundleBytes: 2048 }));
  const big = await makeBundle({ ...appFiles('x'), 'blob.bin': randomBytes(64 * 1024).toString('base64') });
  await expectRejected(server, before, await plan(server.app, 'demo', big), 413, 'DEPLOY_ERR_BUNDLE_TOO_LARGE');
});

it('a wrong X-Bundle-Sha256 is refused (400), a JSON body is 415', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = await makeBundle(appFiles('demo@2.0.0'));
  await expectRejected(server, before, await plan(server.app, 'demo', body, TOKENS.admin, { 'x-bundle-sha256': '0'.repeat(64) }), 400, 'DEPLOY_ERR_SHA256_MISMATCH');
  const json = await server.app.inject({ method: 'POST', url: '/v1/apps/demo/plan', payload: { a: 1 }, headers: { authorization: `Bearer ${TOKENS.admin}` } });
  await expectRejected(server, before, json, 415, 'DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE');
});

it('needs a token with push on the app: 401 without, 403 read-only or for another app (audited as plan)', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = await makeBundle(appFiles('demo@2.0.0'));
  await expectRejected(server, before, await plan(server.app, 'demo', body, null), 401, 'DEPLOY_ERR_UNAUTHORIZED');
  await expectRejected(server, before, await plan(server.app, 'demo', body, TOKENS.reader), 403, 'DEPLOY_ERR_FORBIDDEN');
  await expectRejected(server, before, await plan(server.app, 'demo', body, TOKENS.other), 403, 'DEPLOY_ERR_FORBIDDEN');
  expect((await plan(server.app, 'demo', body, TOKENS.ci)).statusCode).toBe(200);
  const denied = (await auditOf(server.dataDir)).filter((e) => e.outcome === 'denied');
  expect(denied.map((e) => [e.who, e.what])).toEqual([['reader', 'plan'], ['other', 'plan']]);
  expect((await plan(server.app, 'Bad_Name', body)).json()).toMatchObject({ statusCode: 400 });
});
