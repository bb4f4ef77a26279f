import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, expect } from 'vitest';
import { connectNats } from '../../agent/nats/connect.js';
import { desiredKey, encode, hostKey, parseJson, type DesiredRelease, type HostCommand } from '../../agent/nats/protocol.js';
import { agentPermissions, natsUserConfig, servicePermissions } from '../../services/server/nats/permissions.js';
import { ask } from '../helpers/apps.js';
import { FLAKY_ENTRY, itemLoop } from '../helpers/flaky-app.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { natsServerBinary, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { get } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { startAgent, type AgentProcess } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// The NATS users the README shows: the service with its permissions, an agent with only its own
// subjects and read access to the buckets. A real agent deploys with them; with its credentials,
// what an agent must not do is refused by the server.

useNatsServer();
const names = testNames();
let server: NatsServer;
let bed: ClusterBed;
let home: Awaited<ReturnType<typeof pm2Home>>;
let agent: AgentProcess;
let port: number;
const AGENT = { user: 'agent-a', pass: 'agent-a-secret' };

beforeAll(async () => {
  if (natsServerBinary === undefined) return;
  server = await startNatsServer({ config: `authorization {
  users = [
    ${natsUserConfig('service', 'service-secret', servicePermissions(names))}
    ${natsUserConfig(AGENT.user, AGENT.pass, agentPermissions(names, 'a'))}
  ]
}
` });
  bed = await clusterBed(names, { nats: { servers: server.url, user: 'service', pass: 'service-secret' }, prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000 });
  home = await pm2Home();
  port = await freePort();
  agent = await startAgent({ nats: server.url, name: 'a', prefix: names.prefix, dataDir: bed.hostDir('a'), pm2Home: home.home, port,
    env: { HOTDEPLOY_NATS_USER: AGENT.user, HOTDEPLOY_NATS_PASS: AGENT.pass } });
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await home?.cleanup();
  await bed?.close();
  await server?.stop();
}, 60_000);

itWithNats('an agent with only its own permissions takes a first start and a hot update', async () => {
  const first = await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  expect(first.deployment, JSON.stringify(first.deployment)).toMatchObject({ status: 'succeeded', hosts: [{ host: 'a', path: 'start' }] });
  const second = await push(bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(second.deployment, JSON.stringify(second.deployment)).toMatchObject({ status: 'succeeded', hosts: [{ host: 'a', path: 'hot' }] });
  expect((await ask(port)).message).toBe('demo@2.0.0');
}, 120_000);

itWithNats('with an agent\'s credentials: no command to another host, no desired release, no other host\'s record, no object, no stream change', async () => {
  const nc = await connectNats({ servers: server.url, ...AGENT });
  try {
    const js = jetstream(nc, { timeout: 3_000 });
    const kv = await new Kvm(js).open(names.kvBucket);
    const bundles = await new Objm(js).open(names.objBucket);
    const jsm = await jetstreamManager(nc, { timeout: 3_000 });
    // What it may do: write its own record.
    await expect(kv.put(hostKey('a'), (await kv.get(hostKey('a')))!.value)).resolves.toBeGreaterThan(0);

    const command: HostCommand = { type: 'converge', deploymentId: 'x' };
    await expect(js.publish(names.cmdSubject('b'), encode(command))).rejects.toThrow();
    await expect(js.publish(names.cmdSubject('a'), encode(command))).rejects.toThrow();
    await expect(kv.put(desiredKey('demo'), new TextEncoder().encode('{}'))).rejects.toThrow();
    await expect(kv.put(hostKey('b'), new TextEncoder().encode('{}'))).rejects.toThrow();
    await expect(bundles.putBlob({ name: 'demo/evil.tgz' }, new Uint8Array([1, 2, 3]))).rejects.toThrow();
    await expect(jsm.streams.delete(names.stream)).rejects.toThrow();
    // Reading another host's commands: neither through its own consumer's name nor another one's.
    await expect(jsm.consumers.add(names.stream, { durable_name: names.durable('a'), filter_subject: names.cmdSubject('b') })).rejects.toThrow();
    await expect(jsm.consumers.add(names.stream, { durable_name: names.durable('b'), filter_subject: names.cmdSubject('b') })).rejects.toThrow();
  } finally {
    await nc.close();
  }
  // Nothing moved: the desired release is the one the service set, and the app still serves it.
  const desired = parseJson<DesiredRelease>((await bed.cluster.resources.kv.get(desiredKey('demo')))!.value);
  expect(desired?.version).toBe('2.0.0');
  expect(await bed.cluster.resources.bundles.info('demo/evil.tgz')).toBeNull();
  expect((await ask(port)).message).toBe('demo@2.0.0');
}, 60_000);

itWithNats('with only its own permissions, a host forwards a tripped health window and the service rolls the app back', async () => {
  const files = clusterApp('3.0.0');
  const pkg = files['package.json'] as { hotdeploy: Record<string, unknown> };
  const flaky = await push(bed.app, '3.0.0', { ...files, 'index.js': FLAKY_ENTRY, 'package.json': { ...pkg, hotdeploy: { ...pkg.hotdeploy, health: { windowMs: 60_000 } } } });
  expect(flaky.deployment.status, flaky.deployment.reason).toBe('succeeded');
  const load = itemLoop(port, 2);
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
    const auto = await waitFor('the auto-rollback to finish', async (): Promise<any> => {
      const list = (await get(bed.app, '/v1/deployments?app=demo')).json() as { deployments: { kind: string; finishedAt: string | null }[] };
      return list.deployments.find((d) => d.kind === 'auto-rollback' && d.finishedAt !== null);
    }, 30_000);
    expect(auto, auto.reason).toMatchObject({ status: 'succeeded', version: '2.0.0', cause: { version: '3.0.0', deploymentId: flaky.deployment.id } });
  } finally {
    await load.stop();
  }
  expect((await ask(port)).message).toBe('demo@2.0.0');
}, 90_000);
