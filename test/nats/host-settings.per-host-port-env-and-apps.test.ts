import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { hostKey } from '../../agent/nats/protocol.js';
import { ask } from '../helpers/apps.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { upload } from '../helpers/server.js';
import { makeBundle } from '../helpers/bundles.js';
import { cleanEnv, runMain } from '../cli/processes.js';
import { startAgent, type AgentProcess } from './agent-process.js';
import { push } from './fixtures.js';

// Each host's own settings file (mode 0600) gives an app its port, env and instances there, and
// says which apps the host runs; nothing of it leaves the host but the names of those apps.

const nats = useNatsServer();
let bed: ClusterBed;
const homes: Awaited<ReturnType<typeof pm2Home>>[] = [];
const agents: AgentProcess[] = [];
let portA: number;
let portB: number;

function greetingApp(version: string, port: number, name = 'demo'): Record<string, string | object> {
  return {
    'package.json': { name, version, main: 'index.js', hotdeploy: { instances: 1, port } },
    'index.js': `module.exports = (req, res) => res.end(JSON.stringify({ message: ${JSON.stringify(`${name}@${version}`)}, greeting: process.env.GREETING ?? null, pid: process.pid }));\n`,
  };
}

beforeAll(async () => {
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000 });
  [portA, portB] = [await freePort(), await freePort()];
  const hosts = [
    { name: 'a', port: portA, settings: { apps: { demo: { port: portA, env: { GREETING: 'hello from a', API_SECRET: 'only-on-a' } }, other: { port: portA } } } },
    { name: 'b', port: portB, settings: { runs: ['other'], apps: { other: { port: portB } } } },
  ];
  for (const h of hosts) {
    const home = await pm2Home();
    homes.push(home);
    agents.push(await startAgent({ nats: nats.url, name: h.name, prefix: bed.names.prefix, dataDir: bed.hostDir(h.name), pm2Home: home.home, port: h.port, settings: h.settings }));
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const home of homes) await home.cleanup();
  await bed.close();
}, 60_000);

itWithNats('a host takes its own port and env for the app, and only hosts that run the app are in its deployments', async () => {
  // The bundle says another port: the host's setting wins.
  const body = await push(bed.app, '1.0.0', greetingApp('1.0.0', await freePort()));
  expect(body.deployment.status, JSON.stringify(body.deployment)).toBe('succeeded');
  expect(body.deployment.hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual(['a:succeeded']);
  expect(await ask(portA)).toMatchObject({ message: 'demo@1.0.0', greeting: 'hello from a' });

  // The settings stay on the host: the host's record names the apps it runs, never their env.
  const record = new TextDecoder().decode((await bed.cluster.resources.kv.get(hostKey('a')))?.value);
  expect(record).not.toContain('only-on-a');
  expect(JSON.parse(new TextDecoder().decode((await bed.cluster.resources.kv.get(hostKey('b')))?.value)).runs).toEqual(['other']);
}, 90_000);

itWithNats('the port check uses the effective per-host port: another app set to that port on a fails there, before anything changes', async () => {
  const before = await ask(portA);
  const res = await upload(bed.app, 'other', '1.0.0', await makeBundle(greetingApp('1.0.0', await freePort(), 'other')));
  const { deployment } = res.json();
  expect(deployment.status).toBe('failed');
  expect(deployment.hosts).toEqual([
    expect.objectContaining({ host: 'a', status: 'failed', code: 'DEPLOY_ERR_PORT_CONFLICT' }),
    expect.objectContaining({ host: 'b', status: 'not-applied' }),
  ]);
  expect(await ask(portA)).toEqual(before);
}, 90_000);

itWithNats('--strategy reload-all for one push: the host reloads though its dry run says hot, and the choice is recorded', async () => {
  const body = await push(bed.app, '2.0.0', greetingApp('2.0.0', await freePort()), '?strategy=reload-all');
  expect(body.deployment).toMatchObject({ status: 'succeeded', options: { strategy: 'reload-all' }, hosts: [{ host: 'a', path: 'reload', reason: 'strategy reload-all' }] });
  expect(await ask(portA)).toMatchObject({ message: 'demo@2.0.0', greeting: 'hello from a' });
}, 90_000);

itWithNats('an agent refuses a settings file other users can read, or one it cannot understand', async () => {
  const file = path.join(path.dirname(bed.hostDir('x')), 'loose.json');
  await writeFile(file, JSON.stringify({ apps: { demo: { port: 3000 } } }));
  await chmod(file, 0o644);
  const args = ['agent', '--nats', nats.url, '--nats-prefix', bed.names.prefix, '--name', 'x', '--data-dir', bed.hostDir('x'), '--settings', file];
  const loose = await runMain(args, cleanEnv());
  expect(loose.code).not.toBe(0);
  expect(loose.stderr).toContain('mode 644');
  await writeFile(file, JSON.stringify({ apps: { demo: { port: 'eighty' } } }), { mode: 0o600 });
  await chmod(file, 0o600);
  const wrong = await runMain(args, cleanEnv());
  expect(wrong.code).not.toBe(0);
  expect(wrong.stderr).toContain('apps.demo: port must be an integer');
});
