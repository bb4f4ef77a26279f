import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Pm2Client } from '../../agent/pm2/client.js';
import { ask, handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';
import { daemonPid, pm2Home } from '../helpers/pm2.js';
import { waitFor } from '../helpers/wait.js';
import { writeTree } from '../helpers/tmp.js';

// PM2's cluster mode shares a listening socket between every worker that asks for the same port, so
// a second app on an app's port gets no EADDRINUSE: it takes half the traffic. A release whose port
// another app of the host has fails that host (DEPLOY_ERR_PORT_CONFLICT) before anything changes; a
// port another process holds (found by a probe bind, which also finds another daemon's cluster app)
// fails the first start with a clear reason.

let hd: Hotdeploy;
let onePort: number;
let client: Pm2Client;
const app = (name: string, version: string, port: number): Record<string, string | object> => handlerApp({ name, version, port, message: `${name}@${version}` });

/** The app's PM2 processes (pm_id, pid, restarts) and what its port answers. */
async function snapshot(name: string, port: number): Promise<unknown> {
  const procs = (await client.list()).filter((p) => p.name === `hd-${name}`).map((p) => [p.pmId, p.pid, p.status, p.restarts]);
  const status = await appStatus(hd, name);
  return { procs, current: status.current, serving: await pidsServing(port, 2) };
}

async function expectRefused(name: string, version: string, port: number, reason: RegExp): Promise<void> {
  const { deployment } = await push(hd, name, version, app(name, version, port));
  expect(deployment.status).toBe('failed');
  expect(deployment.reason).toMatch(reason);
  expect(deployment.hosts.map((h) => [h.status, (h as { code?: string }).code])).toEqual([['failed', 'DEPLOY_ERR_PORT_CONFLICT']]);
}

beforeAll(async () => {
  hd = await startHotdeploy();
  await waitFor('the agent\'s PM2 daemon', () => daemonPid(hd.pm2Home));
  client = new Pm2Client({ home: hd.pm2Home });
  await client.connect();
  onePort = await freePort();
  expect((await push(hd, 'one', '1.0.0', app('one', '1.0.0', onePort))).deployment.status).toBe('succeeded');
});

afterAll(async () => {
  await client?.disconnect();
  await hd?.close();
});

it('refuses a release on another app\'s port; that app keeps its processes and its traffic', async () => {
  const before = await snapshot('one', onePort);
  await expectRefused('two', '1.0.0', onePort, new RegExp(`port ${onePort} belongs to app one`));
  expect((await client.list()).filter((p) => p.name === 'hd-two')).toEqual([]);
  expect(await snapshot('one', onePort)).toEqual(before);
  // Nothing hot-swapped either: a running app moving onto another app's port is refused the same way.
  const threePort = await freePort();
  expect((await push(hd, 'three', '1.0.0', app('three', '1.0.0', threePort))).deployment.status).toBe('succeeded');
  const three = await snapshot('three', threePort);
  await expectRefused('one', '2.0.0', threePort, new RegExp(`port ${threePort} belongs to app three`));
  expect(await snapshot('one', onePort)).toEqual(before);
  expect(await snapshot('three', threePort)).toEqual(three);
});

it('fails a first start on a port another process holds, and starts nothing', async () => {
  const holder = http.createServer((req, res) => res.end('{"message":"holder","pid":0}'));
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const held = (holder.address() as { port: number }).port;
  try {
    await expectRefused('two', '1.0.1', held, new RegExp(`port ${held} is held by another process`));
    expect((await client.list()).filter((p) => p.name === 'hd-two')).toEqual([]);
    expect((await ask(held)).message).toBe('holder');
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});

it('finds a cluster app of another PM2 daemon on the port', async () => {
  const other = await pm2Home();
  const theirs = new Pm2Client({ home: other.home });
  try {
    const port = await freePort();
    const dir = path.join(other.home, 'app');
    await writeTree(dir, { 'server.js': `require('node:http').createServer((q, s) => s.end('{"message":"theirs","pid":' + process.pid + '}')).listen(${port}, () => process.send('ready'));\n` });
    await theirs.connect();
    await theirs.start({ name: 'theirs', script: path.join(dir, 'server.js'), cwd: dir, instances: 2, env: {}, listenTimeoutMs: 8_000, killTimeoutMs: 2_000 });
    const before = await pidsServing(port, 2);
    await expectRefused('two', '1.0.2', port, new RegExp(`port ${port} is held by another process`));
    expect(await pidsServing(port, 2)).toEqual(before);
    // The same app on a free port starts.
    expect((await push(hd, 'two', '1.0.3', app('two', '1.0.3', await freePort()))).deployment.status).toBe('succeeded');
  } finally {
    await theirs.disconnect();
    await other.cleanup();
  }
});
