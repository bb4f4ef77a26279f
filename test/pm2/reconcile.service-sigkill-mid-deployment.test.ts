import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Deployment } from '../../services/server/deployments.js';
import { ask, handlerApp } from '../helpers/apps.js';
import { makeBundle } from '../helpers/bundles.js';
import { putBundle, useChildServers, type ChildServer } from '../helpers/child-server.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// A real SIGKILL of the service process (the in-process PM2 agent dies with it; the PM2 daemon and
// its workers do not) in the middle of a hot swap and of a reload fallback. After the restart the
// service's record, the agent's pointer and every worker agree within CONVERGE_MS, through a
// deployment of kind `reconcile`, and activate / push work as before.

/** The bound: agent reconnect, observation, and a reconcile deployment (a reload at worst) on a loaded 2-core box. */
const CONVERGE_MS = 60_000;

const children = useChildServers('hd-reconcile-');
let home: { home: string; cleanup: () => Promise<void> };
let port: number;

beforeEach(async () => {
  home = await pm2Home();
  port = await freePort();
});
afterEach(async () => {
  await home.cleanup();
});

/** A module whose evaluation blocks for `ms` (a worker busy loading it answers nothing meanwhile). */
const slow = (message: string, ms: number, decline = false): string =>
  `${decline ? 'module.hot.decline();\n' : ''}Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms});\nmodule.exports = ${JSON.stringify(message)};\n`;

async function api<T>(server: ChildServer, method: string, pathname: string, body?: object): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}${pathname}`, {
    method, headers: { authorization: `Bearer ${TOKENS.admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function push(server: ChildServer, version: string, messageJs: string): Promise<Deployment> {
  const res = await putBundle(server.url, 'shop', version, await makeBundle(handlerApp({ name: 'shop', version, port, messageJs })));
  const body = (await res.json()) as { deployment: Deployment };
  return body.deployment;
}

function start(): Promise<ChildServer> {
  return children.start(children.dir(), { localAgent: true, pm2Home: home.home, logger: { level: 'warn' } });
}

/** Ten answers from the app; each worker answers some (PM2 round-robins connections). */
async function answers(): Promise<string[]> {
  const out = new Set<string>();
  for (let i = 0; i < 10; i++) out.add((await ask(port)).message);
  return [...out];
}

/** The record, the agent's pointer and every worker (as the API lists them and as they answer) all on `version`. */
async function agreeOn(server: ChildServer, version: string, message: string): Promise<true | false> {
  const { body } = await api<{ current: string; workers: { version: string | null }[] }>(server, 'GET', '/v1/apps/shop');
  const pointer = JSON.parse(await readFile(path.join(children.dir(), 'agent', 'apps', 'shop.json'), 'utf8')) as { version: string };
  return body.current === version && pointer.version === version && body.workers.length === 2
    && body.workers.every((w) => w.version === version) && (await answers()).join() === message;
}

async function history(server: ChildServer): Promise<Deployment[]> {
  return (await api<{ deployments: Deployment[] }>(server, 'GET', '/v1/deployments?app=shop')).body.deployments;
}

/** After the restart: converged on 1.0.0 by a reconcile, the interrupted push says where hosts ended, and push / activate work. */
async function expectConvergedAndWorking(server: ChildServer, interruptedVersion: string): Promise<void> {
  const since = Date.now();
  const reconcile = await waitFor('a reconcile deployment to finish',
    async () => (await history(server)).find((d) => d.kind === 'reconcile' && d.finishedAt !== null), CONVERGE_MS);
  await waitFor('record, pointer and workers to agree on 1.0.0', () => agreeOn(server, '1.0.0', 'one'), CONVERGE_MS - (Date.now() - since));
  const deployments = await history(server);
  expect(reconcile?.status, reconcile?.reason).toBe('succeeded');
  expect(reconcile?.version).toBe('1.0.0');
  expect(reconcile?.reason).toMatch(/the service started: hosts differ from the current release 1\.0\.0/);
  const interrupted = deployments.find((d) => d.version === interruptedVersion);
  expect(interrupted?.status).toBe('failed');
  expect(interrupted?.reason).toMatch(/^interrupted: .*the hosts ended on: /);
  expect(interrupted?.endedOn?.[0]?.workers.length).toBe(2);

  const pushed = await push(server, '3.0.0', `module.exports = 'three';\n`);
  expect(pushed.status, pushed.reason).toBe('succeeded');
  expect(await answers()).toEqual(['three']);
  const { body } = await api<{ deployment: Deployment }>(server, 'POST', '/v1/apps/shop/activate', { version: '1.0.0' });
  expect(body.deployment.status, body.deployment.reason).toBe('succeeded');
  expect(await agreeOn(server, '1.0.0', 'one')).toBe(true);
}

/**
 * Pushes 1.0.0, then 2.0.0 whose module takes seconds to load in each worker, and SIGKILLs the service
 * as soon as one worker serves 2.0.0; checks the agent's pointer it leaves, then restarts it.
 */
async function killMidDeployment(one: string, two: string, pointerLeft: string): Promise<ChildServer> {
  const server = await start();
  expect((await push(server, '1.0.0', one)).status).toBe('succeeded');
  const pushing = push(server, '2.0.0', two).catch(() => undefined);
  await waitFor('a worker to serve 2.0.0', async () => (await ask(port, '/', 1_000)).message === 'two', 30_000);
  await server.kill();
  await pushing;
  const pointer = JSON.parse(await readFile(path.join(children.dir(), 'agent', 'apps', 'shop.json'), 'utf8')) as { version: string };
  expect(pointer.version).toBe(pointerLeft);
  return start();
}

describe('a SIGKILL of the service mid-deployment is reconciled at the next start', () => {
  it('mid hot swap: one worker already on 2.0.0, the agent pointer and the record on 1.0.0', async () => {
    // Hot, one worker first: the kill lands while the second one loads it. 5 s each: the poll that
    // sees the first worker serve 2.0.0 can wait out a request held by the loading one (1 s) and a
    // loaded machine, and the kill must still land before the second has loaded it.
    const server = await killMidDeployment(`module.exports = 'one';\n`, slow('two', 5_000), '1.0.0');
    await expectConvergedAndWorking(server, '2.0.0');
  });

  it('mid reload fallback: the agent pointer on 2.0.0, a worker reloaded onto it, the record on 1.0.0', async () => {
    // Declined: the reload path; each new worker takes 2 s to boot, so the kill lands mid-reload.
    const server = await killMidDeployment(`module.hot.decline();\nmodule.exports = 'one';\n`, slow('two', 2_000, true), '2.0.0');
    await expectConvergedAndWorking(server, '2.0.0');
  });
});
