import { afterEach, expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { get, upload } from '../helpers/server.js';
import { makeBundle } from '../helpers/bundles.js';
import { waitFor } from '../helpers/wait.js';
import { startPm2Hosts, stopPm2Hosts, type Pm2Host } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// A host that cannot answer costs a push the ping's ~2 s, not the prepare deadline; NATS itself
// gone is DEPLOY_ERR_CLUSTER_UNAVAILABLE at once. Real `hotdeploy agent` processes with their own PM2.

const shared = useNatsServer();
let bed: ClusterBed | undefined;
let hosts: Pm2Host[] = [];
let own: NatsServer | undefined;

afterEach(async () => {
  for (const h of hosts) if (h.agent.child.signalCode === null) h.agent.child.kill('SIGCONT');
  await stopPm2Hosts(hosts);
  hosts = [];
  await bed?.close();
  await own?.stop();
  own = undefined;
}, 60_000);

itWithNats('a stalled agent (stopped, its subscription silent) fails the push at the ping deadline, not the 60 s prepare one', async () => {
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 60_000, applyTimeoutMs: 30_000 });
  hosts = await startPm2Hosts({ nats: shared.url, prefix: bed.names.prefix, hostDir: bed.hostDir }, ['a', 'b']);
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  const b = hosts[1]!;
  // A partition, as the service sees it: b's connection stays open, nothing on it answers.
  b.agent.child.kill('SIGSTOP');
  try {
    const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
    expect(body.deployment.status).toBe('failed');
    expect(body.deployment.hosts).toEqual([
      { host: 'a', status: 'not-applied', path: 'none', reason: 'held back: b could not be asked' },
      { host: 'b', status: 'unreachable', path: 'none', reason: 'could not be asked: no answer within 2000 ms' },
    ]);
  } finally {
    b.agent.child.kill('SIGCONT');
  }
  expect(await Promise.all(hosts.map(async (h) => (await ask(h.port)).message))).toEqual(['demo@1.0.0', 'demo@1.0.0']);
}, 120_000);

itWithNats('NATS down: /v1/agents answers 503 DEPLOY_ERR_CLUSTER_UNAVAILABLE, an upload is stored and its deployment fails with that code', async () => {
  own = await startNatsServer();
  bed = await clusterBed(testNames(), { nats: { servers: own.url }, prepareTimeoutMs: 30_000 });
  hosts = await startPm2Hosts({ nats: own.url, prefix: bed.names.prefix, hostDir: bed.hostDir }, ['a']);
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  await own.stop();
  const agents = await waitFor('503 from /v1/agents', async () => {
    const res = await get(bed!.app, '/v1/agents');
    return res.statusCode === 503 ? res.json() : undefined;
  });
  expect(agents).toMatchObject({ statusCode: 503, code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE' });

  const res = await upload(bed.app, 'demo', '2.0.0', await makeBundle(clusterApp('2.0.0')));
  expect(res.statusCode).toBe(201);
  const { deployment, release } = res.json();
  expect(release.version).toBe('2.0.0');
  expect(deployment).toMatchObject({ status: 'failed', code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE' });
  expect(deployment.hosts).toEqual([{ host: 'a', status: 'unreachable', path: 'none', reason: expect.stringMatching(/^NATS is unreachable \(disconnected from .*\); no host was asked$/) }]);
  expect((await get(bed.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string }) => r.version)).toContain('2.0.0');
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  expect((await ask(hosts[0]!.port)).message).toBe('demo@1.0.0');
}, 120_000);
