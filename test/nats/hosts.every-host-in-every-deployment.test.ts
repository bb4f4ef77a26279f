import { expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { itWithNats } from '../helpers/nats.js';
import { get, post, TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { cleanEnv, runMain } from '../cli/processes.js';
import { usePm2Cluster } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// Every registered host appears in every deployment with a status, under the unreachable-host
// policy: two `hotdeploy agent` processes, each with its own PM2 daemon, data directory and port.
// The scenarios build on each other, in order.

const cluster = usePm2Cluster(['a', 'b']);

const rows = (d: { hosts: { host: string; status: string }[] }): string[] => d.hosts.map((h) => `${h.host}:${h.status}`);
const messages = (): Promise<string[]> => Promise.all(cluster.hosts.map(async (h) => (await ask(h.port)).message));

function retire(name: string): ReturnType<typeof runMain> {
  return runMain(['agent', '--retire', '--nats', cluster.nats, '--nats-prefix', cluster.bed.names.prefix, '--name', name], cleanEnv());
}

itWithNats('a host whose agent died just now fails the push (unreachable, the other held back), nothing changes anywhere', async () => {
  const first = await push(cluster.bed.app, '1.0.0', clusterApp('1.0.0'));
  expect(rows(first.deployment)).toEqual(['a:succeeded', 'b:succeeded']);
  const b = cluster.hosts[1]!;
  // The push's answer can come before b's report of 1.0.0 reached the service: its last word before
  // the kill must be that it runs 1.0.0 (what the lagging view below shows).
  await waitFor('b to report 1.0.0', async () => {
    const view = (await get(cluster.bed.app, '/v1/agents')).json().hosts.find((h: { host: string }) => h.host === 'b');
    return view?.apps?.demo?.version === '1.0.0' ? true : undefined;
  }, 20_000);
  // Killed a moment ago: its heartbeat is still fresh, its PM2 worker still serves 1.0.0.
  await b.agent.kill();
  const body = await push(cluster.bed.app, '2.0.0', clusterApp('2.0.0'));
  expect(body.deployment.status, JSON.stringify(body.deployment)).toBe('failed');
  expect(body.deployment.hosts).toEqual([
    { host: 'a', status: 'not-applied', path: 'none', reason: 'held back: b could not be asked' },
    { host: 'b', status: 'unreachable', path: 'none', reason: 'could not be asked: its agent is not running (no responders)' },
  ]);
  expect(body.deployment.reason).toMatch(/unreachable: b .*--allow-unreachable/);
  expect(await messages()).toEqual(['demo@1.0.0', 'demo@1.0.0']);
  expect((await get(cluster.bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
}, 90_000);

itWithNats('allowed for one push: the unreachable host is listed lagging, the others take it, and the policy is recorded', async () => {
  const res = await post(cluster.bed.app, '/v1/apps/demo/activate?allowUnreachable=true', { version: '2.0.0' });
  const d = res.json().deployment;
  expect(d.status, JSON.stringify(d)).toBe('succeeded');
  expect(d.options).toEqual({ allowUnreachable: true });
  expect(d.hosts).toEqual([
    { host: 'a', status: 'succeeded', path: 'hot' },
    { host: 'b', status: 'unreachable', path: 'none', lagging: true, reason: 'could not be asked: its agent is not running (no responders); it catches up when its agent is back' },
  ]);
  expect(await messages()).toEqual(['demo@2.0.0', 'demo@1.0.0']);
  const view = (await get(cluster.bed.app, '/v1/agents')).json().hosts.find((h: { host: string }) => h.host === 'b');
  expect(view).toMatchObject({ lagging: true, apps: { demo: { version: '1.0.0', desired: '2.0.0' } } });
}, 90_000);

itWithNats('a running host cannot be retired; a stopped one is, and is in no deployment after', async () => {
  const refused = await retire('a');
  expect(refused.code, refused.stderr).not.toBe(0);
  expect(refused.stderr).toContain('still answers');
  const api = await cluster.bed.app.inject({ method: 'DELETE', url: '/v1/agents/a', headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect([api.statusCode, api.json().code]).toEqual([409, 'DEPLOY_ERR_HOST_RUNNING']);

  const retired = await retire('b');
  expect(retired.code, retired.stderr).toBe(0);
  expect(retired.stdout).toContain('host b retired');
  expect((await get(cluster.bed.app, '/v1/agents')).json().hosts.map((h: { host: string }) => h.host)).toEqual(['a']);
  const body = await push(cluster.bed.app, '3.0.0', clusterApp('3.0.0'));
  expect(body.deployment.status).toBe('succeeded');
  expect(rows(body.deployment)).toEqual(['a:succeeded']);
  const again = await cluster.bed.app.inject({ method: 'DELETE', url: '/v1/agents/b', headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect([again.statusCode, again.json().code]).toEqual([404, 'DEPLOY_ERR_HOST_NOT_FOUND']);
}, 90_000);

itWithNats('a retired host that starts again registers, converges, and is in the next deployment', async () => {
  const b = cluster.hosts[1]!;
  await b.restart();
  await waitFor('b serving 3.0.0', async () => ((await ask(b.port)).message === 'demo@3.0.0' ? true : undefined), 30_000);
  const body = await push(cluster.bed.app, '4.0.0', clusterApp('4.0.0'));
  expect(rows(body.deployment)).toEqual(['a:succeeded', 'b:succeeded']);
  expect(await messages()).toEqual(['demo@4.0.0', 'demo@4.0.0']);
}, 90_000);
