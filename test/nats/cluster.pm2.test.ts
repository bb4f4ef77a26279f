import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { itWithNats } from '../helpers/nats.js';
import { waitFor } from '../helpers/wait.js';
import { get } from '../helpers/server.js';
import { usePm2Cluster } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// Three hosts on one machine: three `hotdeploy agent` processes, each with its own data
// directory, PM2 daemon (PM2_HOME) and app port, driven by the deploy service over the real NATS.
// The scenarios build on each other, in order.

const cluster = usePm2Cluster(['a', 'b', 'c'], { applyTimeoutMs: 15_000 });

async function pids(): Promise<number[]> {
  return Promise.all(cluster.hosts.map(async (h) => (await ask(h.port)).pid));
}

async function messages(): Promise<string[]> {
  return Promise.all(cluster.hosts.map(async (h) => (await ask(h.port)).message));
}

itWithNats('a deploy reaches all three hosts: started under each PM2, then hot on all three with unchanged pids', async () => {
  const first = await push(cluster.bed.app, '1.0.0', clusterApp('1.0.0'));
  expect(first.deployment, JSON.stringify(first.deployment)).toMatchObject({ status: 'succeeded' });
  expect(first.deployment.hosts.map((h: { path: string }) => h.path)).toEqual(['start', 'start', 'start']);
  expect(await messages()).toEqual(['demo@1.0.0', 'demo@1.0.0', 'demo@1.0.0']);
  const before = await pids();

  // 2.0.0 carries a module that declines its next update on host b only (its release path says so).
  const second = await push(cluster.bed.app, '2.0.0', clusterApp('2.0.0', { declineOn: 'host-b' }));
  expect(second.deployment, JSON.stringify(second.deployment)).toMatchObject({ status: 'succeeded' });
  expect(second.deployment.hosts.map((h: { host: string; path: string }) => `${h.host}:${h.path}`)).toEqual(['a:hot', 'b:hot', 'c:hot']);
  expect(second.deployment.workers.map((w: { host: string; outcome: string }) => `${w.host}:${w.outcome}`)).toEqual(['a:hot', 'b:hot', 'c:hot']);
  expect(await messages()).toEqual(['demo@2.0.0', 'demo@2.0.0', 'demo@2.0.0']);
  expect(await pids()).toEqual(before);
}, 90_000);

itWithNats('one host\'s worker declines: that host reloads (checked), the other two stay hot', async () => {
  const before = await pids();
  // 3.0.0 declines its next update on host c (for the scenarios below).
  const body = await push(cluster.bed.app, '3.0.0', clusterApp('3.0.0', { declineOn: 'host-c' }));
  expect(body.deployment, JSON.stringify(body.deployment)).toMatchObject({ status: 'succeeded' });
  expect(body.deployment.hosts.map((h: { host: string; path: string }) => `${h.host}:${h.path}`)).toEqual(['a:hot', 'b:reload', 'c:hot']);
  expect(body.deployment.workers.find((w: { host: string }) => w.host === 'b')).toMatchObject({ outcome: 'reloaded', version: '3.0.0' });
  // The reason is the dry run's: which worker, and the propagation chain that declined.
  expect(body.deployment.hosts[1].reason).toMatch(/^dry run: worker \d+: declined: message\.js/);
  expect(await messages()).toEqual(['demo@3.0.0', 'demo@3.0.0', 'demo@3.0.0']);
  const after = await pids();
  expect([after[0] === before[0], after[1] === before[1], after[2] === before[2]]).toEqual([true, false, true]);
}, 90_000);

async function view(host: string): Promise<{ alive: boolean; lagging: boolean; apps: Record<string, { version: string }> }> {
  return (await get(cluster.bed.app, '/v1/agents')).json().hosts.find((h: { host: string }) => h.host === host);
}

itWithNats('an agent that was down during a deploy allowed to go without it is listed unreachable, flagged lagging, and converges when it starts again', async () => {
  const c = cluster.hosts[2]!;
  await c.agent.kill();
  // Its PM2 daemon and worker live on (PM2 is its own process) and keep serving 3.0.0.
  await waitFor('c gone', async () => ((await view('c')).alive === false ? true : undefined));
  // Allowed for this push: c is listed unreachable and catches up later.
  const body = await push(cluster.bed.app, '4.0.0', clusterApp('4.0.0', { declineOn: 'host-c' }), '?allowUnreachable=true');
  expect(body.deployment.status).toBe('succeeded');
  expect(body.deployment.hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual(['a:succeeded', 'b:succeeded', 'c:unreachable']);
  expect((await ask(c.port)).message).toBe('demo@3.0.0');
  expect(await view('c')).toMatchObject({ alive: false, lagging: true, apps: { demo: { version: '3.0.0', desired: '4.0.0' } } });

  await c.restart();
  await waitFor('c serving 4.0.0', async () => ((await ask(c.port)).message === 'demo@4.0.0' ? true : undefined), 30_000);
  await waitFor('c no longer lagging', async () => {
    const v = await view('c');
    return v.alive && !v.lagging ? true : undefined;
  });
}, 90_000);

itWithNats('an agent killed mid-deploy (during its reload) is reported, and converges when restarted', async () => {
  const c = cluster.hosts[2]!;
  const killed = c.agent;
  const t0 = Date.now();
  const steps: string[] = [];
  const step = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      const value = await run();
      steps.push(`${what}: done at +${Date.now() - t0} ms`);
      return value;
    } catch (err) {
      throw new Error(`${what} (at +${Date.now() - t0} ms, after ${steps.join('; ')}): ${(err as Error).message}
--- killed agent c:
${killed.output()}
--- agent c now:
${c.agent.output()}`, { cause: err });
    }
  };
  const pointer = path.join(cluster.bed.hostDir('c'), 'agent', 'apps', 'demo.json');
  const queued = await push(cluster.bed.app, '5.0.0', clusterApp('5.0.0'), '?wait=false');
  // c's 4.0.0 declines, so c takes the reload: its pointer moves to 5.0.0 just before `pm2 reload`.
  await step('c reloading', () => waitFor('c reloading', async () => (JSON.parse(await readFile(pointer, 'utf8')).version === '5.0.0' ? true : undefined), 20_000));
  await c.agent.kill();
  const done = await step('the deployment', () => waitFor('the deployment', async () => {
    const d = (await get(cluster.bed.app, `/v1/deployments/${queued.deployment.id}`)).json();
    return d.finishedAt ? d : undefined;
  }, 40_000));
  expect(done.status, JSON.stringify(done)).toBe('succeeded');
  expect(done.hosts.find((h: { host: string }) => h.host === 'c')).toMatchObject({ lagging: true });
  expect((await ask(cluster.hosts[0]!.port)).message).toBe('demo@5.0.0');

  await step('c restarted', () => c.restart());
  await step('c converged', () => waitFor('c serving 5.0.0 and not lagging', async () => {
    const v = await view('c');
    return v.alive && !v.lagging && (await ask(c.port)).message === 'demo@5.0.0' ? true : undefined;
  }, 30_000));
}, 150_000);

itWithNats('one host fails prepare: the deployment fails with its reason and no host changes (same pids, same answer)', async () => {
  const before = await pids();
  // Host a cannot unpack anything: a file sits where its staging folder goes.
  await rm(path.join(cluster.bed.hostDir('a'), 'tmp'), { recursive: true, force: true });
  await writeFile(path.join(cluster.bed.hostDir('a'), 'tmp'), '');
  try {
    const body = await push(cluster.bed.app, '6.0.0', clusterApp('6.0.0'));
    expect(body.deployment.status).toBe('failed');
    expect(body.deployment.reason).toMatch(/^nats: a: prepare failed: /);
    expect(await messages()).toEqual(['demo@5.0.0', 'demo@5.0.0', 'demo@5.0.0']);
    expect(await pids()).toEqual(before);
    expect((await get(cluster.bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '5.0.0' });
  } finally {
    await rm(path.join(cluster.bed.hostDir('a'), 'tmp'), { force: true });
    await mkdir(path.join(cluster.bed.hostDir('a'), 'tmp'));
  }
}, 90_000);
