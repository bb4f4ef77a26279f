import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { makeBundle } from '../helpers/bundles.js';
import { itWithNats, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { natsServerBinary, type NatsServer } from '../helpers/nats-server.js';
import { get, TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { startOwnPm2Cluster, stopOwnPm2Cluster, type Pm2Host } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// `hotdeploy plan` across hosts behind NATS: every live host dry-runs the bundle (a prepare that
// keeps nothing) and answers its plan; a stopped host is unplanned; NATS gone is a 503. Real
// `hotdeploy agent` processes with their own PM2, on this file's own nats-server (stopped last).
// The scenarios build on each other, in order.

useNatsServer();
let own: NatsServer | undefined;
let bed: ClusterBed | undefined;
let hosts: Pm2Host[] = [];

beforeAll(async () => {
  if (natsServerBinary === undefined) return;
  ({ own, bed, hosts } = await startOwnPm2Cluster(['a', 'b'], { prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000 }));
  // b's served message.js declines updates: b cannot take the next release hot.
  await push(bed.app, '1.0.0', clusterApp('1.0.0', { declineOn: 'host-b' }));
}, 120_000);

afterAll(() => stopOwnPm2Cluster({ own, bed, hosts }), 60_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
async function plan(files: Record<string, string | object>): Promise<{ statusCode: number; body: any }> {
  const res = await bed!.app.inject({ method: 'POST', url: '/v1/apps/demo/plan', payload: await makeBundle(files),
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' } });
  return { statusCode: res.statusCode, body: res.json() };
}

/** Every path under a host's data directory, and its served-release record: what a plan must not change. */
async function hostState(name: string): Promise<{ paths: string[]; served: Record<string, string> }> {
  const dir = bed!.hostDir(name);
  const paths: string[] = [];
  const served: Record<string, string> = {};
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.name === 'node_modules') continue;
      paths.push(path.relative(dir, full));
      if (entry.isDirectory()) await walk(full);
      else if (entry.name.endsWith('.json') && !full.includes(`${path.sep}releases${path.sep}`)) served[path.relative(dir, full)] = await readFile(full, 'utf8');
    }
  };
  await walk(dir);
  return { paths: paths.sort(), served };
}

async function everything(): Promise<unknown> {
  return {
    hosts: await Promise.all(hosts.map(async (h) => ({ ...(await hostState(h.name)), answer: await ask(h.port) }))),
    current: (await get(bed!.app, '/v1/apps/demo')).json().current,
    objects: (await bed!.cluster.resources.bundles.list()).map((o) => o.name).sort(),
    releases: (await get(bed!.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string }) => r.version),
  };
}

itWithNats('each host answers its own plan (hot on a, reload on b which declines), and nothing changes on any host', async () => {
  const before = await everything();
  const { statusCode, body } = await plan(clusterApp('2.0.0'));
  expect(statusCode, JSON.stringify(body)).toBe(200);
  expect(body).toMatchObject({ app: 'demo', current: '1.0.0', unplanned: [] });
  expect(body.hosts.map((h: { host: string; path: string }) => `${h.host}:${h.path}`)).toEqual(['a:hot', 'b:reload']);
  expect(body.hosts[1].reason).toMatch(/declin/);
  for (const h of body.hosts) expect(h.workers).toHaveLength(1);
  expect(await everything()).toEqual(before);
  expect((await hostState('a')).paths.filter((p) => p.startsWith('tmp/'))).toEqual([]);
}, 90_000);

itWithNats('a bundle a stored release already put in the object store is read from there, and stays', async () => {
  const before = await everything() as { objects: string[] };
  const { statusCode, body } = await plan(clusterApp('1.0.0', { declineOn: 'host-b' }));
  expect(statusCode, JSON.stringify(body)).toBe(200);
  expect(before.objects).toContain(`demo/${body.bundle.sha256}.tgz`);
  expect(body.hosts.map((h: { host: string }) => h.host)).toEqual(['a', 'b']);
  expect(await everything()).toEqual(before);
}, 90_000);

itWithNats('a stopped host is unplanned with the reason; the other still plans', async () => {
  await hosts[1]!.agent.stop();
  const { statusCode, body } = await plan(clusterApp('2.0.0'));
  expect(statusCode, JSON.stringify(body)).toBe(200);
  expect(body.hosts.map((h: { host: string; path: string }) => `${h.host}:${h.path}`)).toEqual(['a:hot']);
  expect(body.unplanned).toEqual([{ host: 'b', reason: expect.stringMatching(/^unreachable: .*not running/) }]);
  expect((await ask(hosts[0]!.port)).message).toBe('demo@1.0.0');
  await hosts[1]!.restart();
  await waitFor('b answers its ping again', async () => ((await plan(clusterApp('2.0.0'))).body.unplanned.length === 0 ? true : undefined), 30_000);
}, 90_000);

itWithNats('NATS stopped: plan answers 503 DEPLOY_ERR_CLUSTER_UNAVAILABLE, and the hosts serve what they served', async () => {
  const served = await Promise.all(hosts.map(async (h) => ask(h.port)));
  await own!.stop();
  const res = await waitFor('503 from plan', async () => {
    const r = await plan(clusterApp('2.0.0'));
    return r.statusCode === 503 ? r.body : undefined;
  }, 30_000);
  expect(res).toMatchObject({ statusCode: 503, code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE' });
  expect(await Promise.all(hosts.map(async (h) => ask(h.port)))).toEqual(served);
  expect((await get(bed!.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
}, 90_000);
