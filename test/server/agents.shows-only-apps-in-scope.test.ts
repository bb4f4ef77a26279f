import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { deployVersion, get, testServer, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

function appsSeen(body: { hosts: { host: string; apps: Record<string, { version: string }> }[] }): Record<string, string[]> {
  return Object.fromEntries(body.hosts.map((h) => [h.host, Object.keys(h.apps).sort()]));
}

it('GET /v1/agents shows each host, and of its apps only those the token covers', async () => {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await deployVersion(server.app, 'demo', '1.0.0');
  await deployVersion(server.app, 'other', '1.0.0');
  await deployVersion(server.app, 'third', '1.0.0');

  const admin = await get(server.app, '/v1/agents', TOKENS.admin);
  expect(admin.statusCode).toBe(200);
  expect(appsSeen(admin.json())).toEqual({ 'host-a': ['demo', 'other', 'third'] });
  // Scoped to demo, to other: each sees the host and its own app only.
  expect(appsSeen((await get(server.app, '/v1/agents', TOKENS.ci)).json())).toEqual({ 'host-a': ['demo'] });
  expect(appsSeen((await get(server.app, '/v1/agents', TOKENS.other)).json())).toEqual({ 'host-a': ['other'] });
  // A read token of every app sees them all, as the admin does.
  expect(appsSeen((await get(server.app, '/v1/agents', TOKENS.reader)).json())).toEqual({ 'host-a': ['demo', 'other', 'third'] });
  // Nothing else changed: every app still on its release.
  for (const app of ['demo', 'other', 'third']) expect((await get(server.app, `/v1/apps/${app}`)).json()).toMatchObject({ current: '1.0.0' });
});

it('DELETE /v1/agents/:host needs activate on every app (a scoped token\'s try is audited), and a host name of the pattern', async () => {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await deployVersion(server.app, 'demo', '1.0.0');
  const retire = (host: string, token: string) => server.app.inject({ method: 'DELETE', url: `/v1/agents/${host}`, headers: { authorization: `Bearer ${token}` } });
  for (const [host, token, statusCode, code] of [
    ['host-a', TOKENS.other, 403, 'DEPLOY_ERR_FORBIDDEN'], // activate, on one app only
    ['host-a', TOKENS.reader, 403, 'DEPLOY_ERR_FORBIDDEN'], // every app, read only
    ['..%2F..%2Fapps', TOKENS.admin, 400, 'DEPLOY_ERR_VALIDATION'],
    ['host%00a', TOKENS.admin, 400, 'DEPLOY_ERR_VALIDATION'],
    ['h'.repeat(65), TOKENS.admin, 400, 'DEPLOY_ERR_VALIDATION'],
    ['host-a', TOKENS.admin, 404, 'DEPLOY_ERR_ROUTE_NOT_FOUND'], // hosts are retired only with --nats
  ] as const) {
    const res = await retire(host, token);
    expect([res.statusCode, res.json().code], host).toEqual([statusCode, code]);
  }
  const audit = (await readFile(path.join(server.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(audit.filter((e) => e.what === 'retire')).toEqual([expect.objectContaining({ who: 'other', reason: 'host host-a', outcome: 'denied', code: 'DEPLOY_ERR_FORBIDDEN' })]);
  expect(appsSeen((await get(server.app, '/v1/agents', TOKENS.admin)).json())).toEqual({ 'host-a': ['demo'] });
});
