import { afterAll, beforeAll, expect } from 'vitest';
import type { DeploymentPhase } from '../../agent/messages.js';
import { ask } from '../helpers/apps.js';
import { crowdEntry, requestLoop } from '../helpers/crowded-app.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { get } from '../helpers/server.js';
import { startAgent, type AgentProcess } from './agent-process.js';
import { push } from './fixtures.js';

// `--canary` behind NATS counts hosts: two `hotdeploy agent` processes (a, b), each with its own PM2
// daemon and port, driven by the deploy service over a real nats-server, under a request loop.

interface Host { name: string; port: number; home: { home: string; cleanup: () => Promise<void> }; agent: AgentProcess }

let bed: ClusterBed;
const hosts: Host[] = [];
const nats = useNatsServer();

/** Two workers per host, the probe on `/health`; `crowdFails`: `/` fails only under load. Each host gives its own PORT. */
function app(version: string, crowdFails = false): Record<string, string | object> {
  return {
    'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { instances: 2, health: { path: '/health' } } },
    'message.js': `module.exports = ${JSON.stringify(`demo@${version}`)};\n`,
    'index.js': crowdEntry(crowdFails),
  };
}

async function pidsOf(host: Host): Promise<number[]> {
  const pids = new Set<number>();
  // PM2 hands new connections to the workers in turn: a few asks reach both.
  for (let i = 0; i < 8 && pids.size < 2; i++) pids.add((await ask(host.port)).pid);
  return [...pids].sort();
}

beforeAll(async () => {
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 30_000, applyTimeoutMs: 20_000 });
  for (const name of ['a', 'b']) {
    const home = await pm2Home();
    const port = await freePort();
    hosts.push({ name, port, home, agent: await startAgent({ nats: nats.url, name, prefix: bed.names.prefix, dataDir: bed.hostDir(name), pm2Home: home.home, port }) });
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.agent.stop()));
  for (const h of hosts) await h.home.cleanup();
  await bed?.close();
}, 60_000);

itWithNats('a canary host catches a release that fails under load; the other host never changes and never fails', async () => {
  const first = await push(bed.app, '1.0.0', app('1.0.0'));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
  const [a, b] = hosts as [Host, Host];
  const before = { a: await pidsOf(a), b: await pidsOf(b) };

  const { value: body, answers, errors } = await requestLoop([a.port, b.port], 4, () => push(bed.app, '2.0.0', app('2.0.0', true), '?canary=1&canaryWatchMs=4000'));
  const d = body.deployment as { status: string; reason: string; phases: DeploymentPhase[]; hosts: { host: string; status: string; path: string }[] };
  expect(d.status, d.reason).toBe('rolled-back');
  expect(d.phases.map((p) => [p.host, p.name, p.status])).toEqual([
    ['nats', 'canary', 'failed'], ['a', 'canary', 'passed'], ['a', 'watch', 'failed'], ['a', 'swap-back', 'passed'], ['nats', 'swap-back', 'passed'],
  ]);
  expect(d.phases[0]!.hosts).toEqual(['a']);
  expect(d.phases[2]!.reason).toMatch(/health window tripped/);
  expect(d.hosts.map((h) => [h.host, h.status, h.path])).toEqual([['a', 'rolled-back', 'hot'], ['b', 'succeeded', 'none']]);

  // Host b was never offered the release: same processes, every answer good and from 1.0.0.
  expect(errors).toEqual([]);
  const onB = answers.filter((x) => x.port === b.port);
  expect(onB.length).toBeGreaterThan(20);
  expect(onB.filter((x) => x.status !== 200 || x.message !== 'demo@1.0.0')).toEqual([]);
  expect(answers.some((x) => x.port === a.port && x.status === 500 && x.message === 'demo@2.0.0')).toBe(true);
  expect({ a: await pidsOf(a), b: await pidsOf(b) }).toEqual(before);
  expect((await ask(a.port)).message).toBe('demo@1.0.0');
  expect(((await get(bed.app, '/v1/apps/demo')).json() as { current: string }).current).toBe('1.0.0');

  // A good release with the same canary: host a first, watched, then host b; the desired release moves.
  const good = await push(bed.app, '3.0.0', app('3.0.0'), '?canary=50%25&canaryWatchMs=1500');
  expect(good.deployment.status, good.deployment.reason).toBe('succeeded');
  expect((good.deployment.phases as DeploymentPhase[]).filter((p) => p.host === 'nats').map((p) => [p.name, p.status, p.hosts]))
    .toEqual([['canary', 'passed', ['a']], ['rest', 'passed', ['b']]]);
  expect([(await ask(a.port)).message, (await ask(b.port)).message]).toEqual(['demo@3.0.0', 'demo@3.0.0']);
  expect({ a: await pidsOf(a), b: await pidsOf(b) }).toEqual(before);
}, 120_000);
