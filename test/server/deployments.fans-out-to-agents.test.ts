import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { deployVersion, get, testServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('sends every agent the release, its manifest and the previous release, and records each worker', async () => {
  const a = new ScriptedAgent('host-a');
  const b = new ScriptedAgent('host-b');
  server = await testServer({ agents: [a, b] });
  await deployVersion(server.app, 'demo', '1.0.0');
  const body = await deployVersion(server.app, 'demo', '2.0.0');

  expect(a.requests.map((r) => r.version)).toEqual(['1.0.0', '2.0.0']);
  const request = a.requests[1];
  expect(request).toMatchObject({
    app: 'demo', version: '2.0.0', kind: 'push',
    releaseDir: path.join(server.dataDir, 'apps/demo/releases/2.0.0'),
    previous: { version: '1.0.0', releaseDir: path.join(server.dataDir, 'apps/demo/releases/1.0.0') },
    manifest: { entry: 'index.js', mode: 'handler' },
  });
  expect(a.requests[0]?.previous).toBeNull();
  expect(body.deployment).toMatchObject({
    status: 'succeeded', from: '1.0.0',
    hosts: [{ host: 'host-a', status: 'succeeded', path: 'hot' }, { host: 'host-b', status: 'succeeded', path: 'hot' }],
    workers: [{ host: 'host-a', outcome: 'hot', version: '2.0.0' }, { host: 'host-b', outcome: 'hot', version: '2.0.0' }],
  });
  expect((body.deployment as { reason?: string }).reason).toBeUndefined();

  const status = (await get(server.app, '/v1/apps/demo')).json();
  expect(status).toMatchObject({ current: '2.0.0', previous: '1.0.0' });
  expect(status.workers).toEqual([
    expect.objectContaining({ host: 'host-a', version: '2.0.0' }),
    expect.objectContaining({ host: 'host-b', version: '2.0.0' }),
  ]);
});

it('records an agent that throws as a failed host and keeps the previous release current', async () => {
  const a = new ScriptedAgent('host-a');
  server = await testServer({ agents: [a] });
  await deployVersion(server.app, 'demo', '1.0.0');
  a.activate = async () => { throw new Error('PM2 daemon unreachable'); };
  const body = await deployVersion(server.app, 'demo', '2.0.0');
  expect(body.deployment).toMatchObject({ status: 'failed', hosts: [{ host: 'host-a', status: 'failed', reason: 'PM2 daemon unreachable' }] });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
});
