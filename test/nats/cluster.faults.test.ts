import { afterEach, beforeEach, expect } from 'vitest';
import { objectName } from '../../agent/nats/bundles.js';
import { hostKey, encode, type HostCommand, type HostRecord } from '../../agent/nats/protocol.js';
import { startServer } from '../../services/server/start-server.js';
import { makeBundle } from '../helpers/bundles.js';
import { freePort } from '../helpers/ports.js';
import { inProcessHost, type InProcessHost } from '../helpers/in-process-host.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { waitFor } from '../helpers/wait.js';
import { get, post, TOKEN_CONFIG } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { clusterApp, push } from './fixtures.js';

// Faults of the NATS transport, with hosts that are real clients of the real subjects and
// run the real worker runtime in this process (no PM2).

let bed: ClusterBed;
let hosts: TestHost[];

useNatsServer();

beforeEach(async () => {
  bed = await clusterBed(testNames(), { applyTimeoutMs: 2_000 });
  hosts = [];
});

afterEach(async () => {
  for (const host of hosts) await host.stop();
  for (const host of hosts) await host.agent.close();
  await bed.close();
});

async function addHost(agent: InProcessHost): Promise<InProcessHost> {
  hosts.push(await startHost(bed.names, agent, bed.hostDir(agent.host)));
  return agent;
}

itWithNats('refuses a bundle whose bytes in the object store do not match the release sha256; nobody changes', async () => {
  const a = await addHost(inProcessHost('a'));
  const b = await addHost(inProcessHost('b'));
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  const stored = await push(bed.app, '2.0.0', clusterApp('2.0.0'), '?activate=false');
  // Someone replaced the object: consistent for the object store, not what the service recorded.
  await bed.cluster.resources.bundles.putBlob({ name: objectName('demo', stored.release.sha256) }, await makeBundle(clusterApp('evil')));
  const res = await post(bed.app, '/v1/apps/demo/activate', { version: '2.0.0' });
  const deployment = res.json().deployment;
  expect(deployment.status).toBe('failed');
  expect(deployment.reason).toContain('a: prepare failed: the bundle read from the object store does not match its sha256');
  expect(deployment.reason).toContain('b: prepare failed: the bundle read from the object store does not match its sha256');
  expect([a.served('demo'), b.served('demo')]).toEqual(['1.0.0', '1.0.0']);
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
});

itWithNats('a registered host that is not running is unreachable: allowed, the push goes on without it, and it converges at start', async () => {
  const a = await addHost(inProcessHost('a'));
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  // c is registered (a heartbeat) but its agent is not running.
  const record: HostRecord = { host: 'c', hotdeploy: 'test', pid: 0, startedAt: new Date().toISOString(), heartbeatAt: Date.now(), heartbeatMs: 60_000, apps: {} };
  await bed.cluster.resources.kv.put(hostKey('c'), encode(record));
  const refused = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(refused.deployment.hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual(['a:not-applied', 'c:unreachable']);
  expect(a.served('demo')).toBe('1.0.0');
  // Nothing was sent to c: the stream holds no command for it.
  const { jsm, names } = bed.cluster.resources;
  expect(await jsm.streams.getMessage(names.stream, { last_by_subj: names.cmdSubject('c') }).catch(() => null)).toBeNull();

  const allowed = (await post(bed.app, '/v1/apps/demo/activate?allowUnreachable=true', { version: '2.0.0' })).json().deployment;
  expect(allowed.hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual(['a:succeeded', 'c:unreachable']);
  const c = await addHost(inProcessHost('c'));
  expect([a.served('demo'), c.served('demo')]).toEqual(['2.0.0', '2.0.0']);
});

itWithNats('a host that disappears mid-apply is reported lagging and converges to the current release when it returns', async () => {
  const a = await addHost(inProcessHost('a'));
  const c = await addHost(inProcessHost('c'));
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  c.hold();
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.status).toBe('succeeded');
  expect(body.deployment.hosts).toEqual([
    { host: 'a', status: 'succeeded', path: 'hot' },
    { host: 'c', status: 'failed', path: 'none', lagging: true, reason: 'no answer to apply within 2000 ms; it converges to the current release when it is back' },
  ]);
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0' });
  const lagging = (await get(bed.app, '/v1/agents')).json().hosts.find((h: { host: string }) => h.host === 'c');
  expect(lagging).toMatchObject({ lagging: true, apps: { demo: { version: '1.0.0', desired: '2.0.0', lagging: true } } });

  // c is killed in the middle of that apply (its command never acknowledged), then starts again.
  await hosts.find((h) => h.name === 'c')?.kill();
  const back = await addHost(inProcessHost('c'));
  expect(back.served('demo')).toBe('2.0.0');
  expect(a.served('demo')).toBe('2.0.0');
  await waitFor('c no longer lagging', async () => {
    const view = (await get(bed.app, '/v1/agents')).json().hosts.find((h: { host: string }) => h.host === 'c');
    return view.lagging === false ? view : undefined;
  });
});

itWithNats('NATS unreachable mid-life: the deployment fails with a clear reason and nothing changes', async () => {
  const a = await addHost(inProcessHost('a'));
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  await bed.cluster.resources.nc.close();
  const body = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.status).toBe('failed');
  expect(body.deployment).toMatchObject({ code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE', reason: 'nats: NATS is unreachable (the connection is closed); no host was asked' });
  expect(body.deployment.hosts).toEqual([{ host: 'a', status: 'unreachable', path: 'none', reason: 'NATS is unreachable (the connection is closed); no host was asked' }]);
  expect(a.served('demo')).toBe('1.0.0');
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
});

itWithNats('serve --nats with NATS unreachable fails to start with HOT_ERR_NATS_UNREACHABLE', async () => {
  const { dir, cleanup } = await tempDir('hd-nats-down-');
  try {
    const port = await freePort();
    await expect(startServer({ dataDir: dir, port: 0, localAgent: false, logger: false, tokens: TOKEN_CONFIG, nats: { nats: { servers: `nats://127.0.0.1:${port}`, timeoutMs: 1_000 } } }))
      .rejects.toMatchObject({ code: 'HOT_ERR_NATS_UNREACHABLE', message: expect.stringContaining(`127.0.0.1:${port}`) });
  } finally {
    await cleanup();
  }
});

itWithNats('a host skips commands the service gave up on (expired) and malformed ones, in order, then answers the next', async () => {
  const a = await addHost(inProcessHost('a'));
  const first = await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  await push(bed.app, '2.0.0', clusterApp('2.0.0'), '?activate=false');
  const { js, nc, names } = bed.cluster.resources;
  const release = { app: 'demo', version: '2.0.0', sha256: first.release.sha256, object: 'demo/none.tgz', manifest: first.release.manifest, kind: 'push' };
  const replies = nc.subscribe(names.replySubject('probe'), { max: 1, timeout: 10_000 });
  await js.publish(names.cmdSubject('a'), encode({ type: 'apply', deploymentId: 'probe', release, strategy: 'auto', expiresAt: Date.now() - 1 } as HostCommand));
  await js.publish(names.cmdSubject('a'), new TextEncoder().encode('{"type":"apply","deploymentId":"probe"}'));
  await js.publish(names.cmdSubject('a'), encode({ type: 'converge', deploymentId: 'probe' }));
  // Commands are handled one at a time in order: the converge answer comes after both were skipped.
  const answers: string[] = [];
  for await (const msg of replies) answers.push(msg.json<{ type: string }>().type);
  expect(answers).toEqual(['converged']);
  expect(a.served('demo')).toBe('1.0.0');
});
