import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { answerPings } from '../../agent/nats/presence.js';
import { inProcessHost, type InProcessHost } from '../helpers/in-process-host.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { get } from '../helpers/server.js';
import { clusterApp, push } from './fixtures.js';

// Hosts here are real clients of the real subjects, stream and buckets, each running the real worker
// runtime in this process instead of PM2, so the protocol is proven on its own (PM2 hosts are in
// cluster.pm2.test.ts).

let bed: ClusterBed;
let hosts: TestHost[];

useNatsServer();

beforeEach(async () => {
  bed = await clusterBed(testNames());
  hosts = [];
});

afterEach(async () => {
  for (const host of hosts) await host.stop();
  for (const host of hosts) await host.agent.close();
  await bed.close();
});

async function addHosts(...names: string[]): Promise<InProcessHost[]> {
  const agents = names.map((name) => inProcessHost(name));
  for (const agent of agents) hosts.push(await startHost(bed.names, agent, bed.hostDir(agent.host)));
  return agents;
}

itWithNats('deploys to every host: first start, then hot everywhere; GET /v1/agents lists each host and what it serves', async () => {
  const [a, b, c] = await addHosts('a', 'b', 'c');
  const first = await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  expect(first.deployment).toMatchObject({ status: 'succeeded' });
  expect(first.deployment.hosts.map((h: { host: string; path: string }) => `${h.host}:${h.path}`)).toEqual(['a:start', 'b:start', 'c:start']);

  const second = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(second.deployment).toMatchObject({ status: 'succeeded', from: '1.0.0' });
  expect(second.deployment.hosts).toEqual([
    { host: 'a', status: 'succeeded', path: 'hot' }, { host: 'b', status: 'succeeded', path: 'hot' }, { host: 'c', status: 'succeeded', path: 'hot' },
  ]);
  expect(second.deployment.workers.map((w: { host: string; outcome: string; version: string }) => `${w.host}:${w.outcome}:${w.version}`))
    .toEqual(['a:hot:2.0.0', 'b:hot:2.0.0', 'c:hot:2.0.0']);
  expect([a, b, c].map((h) => h?.served('demo'))).toEqual(['2.0.0', '2.0.0', '2.0.0']);

  const agents = (await get(bed.app, '/v1/agents')).json();
  expect(agents.hosts).toHaveLength(3);
  expect(agents.hosts[0]).toMatchObject({ host: 'a', transport: 'nats', alive: true, lagging: false, apps: { demo: { version: '2.0.0', desired: '2.0.0', workers: 1 } } });
  expect(Date.parse(agents.hosts[0].lastHeartbeat)).toBeGreaterThan(Date.now() - 10_000);
});

itWithNats('reloads the host whose worker declines in the dry run while the others swap hot', async () => {
  const [a, b, c] = await addHosts('a', 'b', 'c');
  await push(bed.app, '1.0.0', clusterApp('1.0.0', { declineOn: 'host-b' }));
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.status).toBe('succeeded');
  expect(body.deployment.hosts).toEqual([
    { host: 'a', status: 'succeeded', path: 'hot' },
    { host: 'b', status: 'succeeded', path: 'reload', reason: expect.stringMatching(/^dry run: worker 0: declined: message\.js/) },
    { host: 'c', status: 'succeeded', path: 'hot' },
  ]);
  expect([a, b, c].map((h) => h?.served('demo'))).toEqual(['2.0.0', '2.0.0', '2.0.0']);
});

itWithNats('with strategy reload-all every host reloads', async () => {
  await bed.close();
  bed = await clusterBed(testNames(), { strategy: 'reload-all' });
  await addHosts('a', 'b');
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.hosts.map((h: { path: string }) => h.path)).toEqual(['reload', 'reload']);
});

itWithNats('a host failing prepare leaves every host on the old release and fails with that host\'s reason', async () => {
  const [a, b, c] = await addHosts('a', 'b', 'c');
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  // Host c cannot unpack anything: a file sits where its staging folder goes.
  await rm(path.join(bed.hostDir('c'), 'tmp'), { recursive: true });
  await writeFile(path.join(bed.hostDir('c'), 'tmp'), '');
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.status).toBe('failed');
  expect(body.deployment.reason).toMatch(/^nats: c: prepare failed: /);
  expect(body.deployment.hosts.find((h: { host: string }) => h.host === 'c')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^prepare failed/) });
  expect([a, b, c].map((h) => h?.served('demo'))).toEqual(['1.0.0', '1.0.0', '1.0.0']);
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  const agents = (await get(bed.app, '/v1/agents')).json();
  expect(agents.hosts.map((h: { apps: { demo: { version: string } } }) => h.apps.demo.version)).toEqual(['1.0.0', '1.0.0', '1.0.0']);
});

itWithNats('a registered host that never answers prepare fails the deployment after the prepare timeout; nobody changes', async () => {
  await bed.close();
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 1_500 });
  const [a, b] = await addHosts('a', 'b');
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  // A host that heartbeats and answers "are you there?" but does not read its commands (wedged).
  const ghost = inProcessHost('ghost');
  const wedged = await startHost(bed.names, ghost, bed.hostDir('ghost'), 60_000);
  hosts.push(wedged);
  await wedged.loop.close();
  answerPings({ nc: wedged.nc, names: bed.names }, 'ghost');
  const t0 = Date.now();
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
  expect(body.deployment.status).toBe('failed');
  expect(body.deployment.reason).toBe('nats: ghost: no answer to prepare within 1500 ms');
  expect(body.deployment.hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual(['a:not-applied', 'b:not-applied', 'ghost:failed']);
  expect([a, b].map((h) => h?.served('demo'))).toEqual(['1.0.0', '1.0.0']);
});

itWithNats('a host whose release does not start rolls back, and the hosts that took it hot are brought back', async () => {
  const [a, b, c] = await addHosts('a', 'b', 'c');
  await push(bed.app, '1.0.0', clusterApp('1.0.0', { declineOn: 'host-b' }));
  // b must reload (its 1.0.0 declines), and 2.0.0 throws at start there only.
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0', { throwOn: 'host-b' }));
  expect(body.deployment.status).toBe('rolled-back');
  expect(body.deployment.reason).toMatch(/^nats: b: 2\.0\.0 did not start: no start here/);
  expect(body.deployment.hosts).toEqual([
    { host: 'a', status: 'succeeded', path: 'hot' },
    expect.objectContaining({ host: 'b', status: 'rolled-back', path: 'reload' }),
    { host: 'c', status: 'succeeded', path: 'hot' },
    { host: 'a', status: 'succeeded', path: 'hot', reverted: true },
    { host: 'c', status: 'succeeded', path: 'hot', reverted: true },
  ]);
  expect([a, b, c].map((h) => h?.served('demo'))).toEqual(['1.0.0', '1.0.0', '1.0.0']);
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  expect((await get(bed.app, '/v1/apps/demo/releases')).json().releases.find((r: { version: string }) => r.version === '2.0.0')).toMatchObject({ bad: true });
});
