import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { builtScript } from '../../agent/common/package-files.js';
import { createPm2Agent, type Pm2Agent } from '../../agent/pm2/agent.js';
import { Pm2Client } from '../../agent/pm2/client.js';
import { stateFile, writeState } from '../../agent/pm2/state.js';
import { handlerApp, pidsServing, release, underLoad } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { pm2Home } from '../helpers/pm2.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

// An agent started over a daemon that still runs an app the way earlier versions did (PM2 name = the
// bare app name) takes it over: hd-<app> starts beside it and the old processes go once it is up,
// under a keep-alive load loop that loses no request. A process of the user's named like the app's
// new name would be is never touched.

const APP = 'web';

let home: Awaited<ReturnType<typeof pm2Home>>;
let data: Awaited<ReturnType<typeof tempDir>>;
let client: Pm2Client;
let agent: Pm2Agent | undefined;
let port: number;

beforeAll(async () => {
  home = await pm2Home();
  data = await tempDir('hd-data-');
  port = await freePort();
  client = new Pm2Client({ home: home.home });
  await client.connect();
});

afterAll(async () => {
  await agent?.close();
  await client?.disconnect();
  await home?.cleanup();
  await data?.cleanup();
});

it('takes over processes started under the bare app name without dropping a request', async () => {
  const v1 = await release(data.dir, APP, 'v1', handlerApp({ name: APP, version: 'v1', port, message: 'one' }));
  const state = { app: APP, version: 'v1', releaseDir: v1.releaseDir, instances: 2, env: { PORT: String(port) } };
  await writeState(data.dir, state);
  // What the earlier agent ran: the bare name, its marker, the same bootstrap.
  await client.start({
    name: APP, script: builtScript('agent/worker/bootstrap.js'), cwd: data.dir, instances: 2, listenTimeoutMs: 8_000, killTimeoutMs: 3_000,
    env: { ...state.env, HOTDEPLOY_APP: APP, HOTDEPLOY_STATE_FILE: stateFile(data.dir, APP), HOTDEPLOY_KILL_TIMEOUT_MS: '3000' },
  });
  const old = await pidsServing(port, 2);
  expect(old.messages).toEqual(['one']);

  const load = await underLoad(port, 8, async () => {
    agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000 });
    await agent.ready();
  });
  expect(load.failures).toEqual([]);
  expect(load.ok).toBeGreaterThan(20);

  const procs = await client.list();
  expect(procs.map((p) => [p.name, p.status])).toEqual([[`hd-${APP}`, 'online'], [`hd-${APP}`, 'online']]);
  const now = await pidsServing(port, 2);
  expect(now.messages).toEqual(['one']);
  expect(now.pids.filter((pid) => old.pids.includes(pid))).toEqual([]);

  // And it is the app as any other: the next release goes hot on the new processes.
  const v2 = await release(data.dir, APP, 'v2', handlerApp({ name: APP, version: 'v2', port, message: 'two' }), { version: 'v1', releaseDir: v1.releaseDir });
  const result = await agent!.activate(v2);
  expect([result.status, ...result.workers.map((w) => w.outcome)], result.reason).toEqual(['succeeded', 'hot', 'hot']);
  expect(await pidsServing(port, 2)).toEqual({ pids: now.pids, messages: ['two'] });
}, 90_000);

it('refuses to start an app whose PM2 name a process of the user\'s already has, and leaves that process alone', async () => {
  const userPort = await freePort();
  const dir = path.join(data.dir, 'user-app');
  await writeTree(dir, { 'server.js': `require('node:http').createServer((q, s) => s.end('{"message":"mine","pid":' + process.pid + '}')).listen(${userPort}, () => process.send && process.send('ready'));\n` });
  await client.start({ name: 'hd-api', script: path.join(dir, 'server.js'), cwd: dir, instances: 1, env: {}, listenTimeoutMs: 8_000, killTimeoutMs: 3_000 });
  const mine = (await client.list()).filter((p) => p.name === 'hd-api');
  const result = await agent!.activate(await release(data.dir, 'api', 'v1', handlerApp({ name: 'api', version: 'v1', port: await freePort(), message: 'api' })));
  expect(result.status).toBe('failed');
  expect(result.reason).toMatch(/HOT_ERR_PM2_NAME_TAKEN|hotdeploy did not start/);
  expect((await client.list()).filter((p) => p.name === 'hd-api').map((p) => [p.pmId, p.pid, p.status, p.restarts]))
    .toEqual(mine.map((p) => [p.pmId, p.pid, 'online', p.restarts]));
  expect((await pidsServing(userPort, 1)).messages).toEqual(['mine']);
});

it('without --pm2-home, keeps driving the daemon of PM2_HOME where an earlier version still runs the data directory\'s apps', async () => {
  const legacy = await pm2Home();
  const dataDir = await tempDir('hd-data-');
  const theirs = new Pm2Client({ home: legacy.home });
  const warnings: Record<string, unknown>[] = [];
  const logger = { info: () => undefined, error: () => undefined, warn: (obj: object) => void warnings.push(obj as Record<string, unknown>) };
  let upgraded: Pm2Agent | undefined;
  const saved = process.env.PM2_HOME;
  try {
    const appPort = await freePort();
    const v1 = await release(dataDir.dir, APP, 'v1', handlerApp({ name: APP, version: 'v1', port: appPort, message: 'legacy' }));
    const state = { app: APP, version: 'v1', releaseDir: v1.releaseDir, instances: 1, env: { PORT: String(appPort) } };
    await writeState(dataDir.dir, state);
    await theirs.connect();
    await theirs.start({
      name: APP, script: builtScript('agent/worker/bootstrap.js'), cwd: dataDir.dir, instances: 1, listenTimeoutMs: 8_000, killTimeoutMs: 3_000,
      env: { ...state.env, HOTDEPLOY_APP: APP, HOTDEPLOY_STATE_FILE: stateFile(dataDir.dir, APP), HOTDEPLOY_KILL_TIMEOUT_MS: '3000' },
    });
    const old = await pidsServing(appPort, 1);
    process.env.PM2_HOME = legacy.home;
    upgraded = createPm2Agent({ dataDir: dataDir.dir, logger, settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000 });
    process.env.PM2_HOME = saved;
    expect(upgraded.client.home).toBe(legacy.home);
    await upgraded.ready();
    expect(warnings.map((w) => w.event)).toContain('pm2-legacy-home');
    expect((await theirs.list()).map((p) => p.name)).toEqual([`hd-${APP}`]);
    const now = await pidsServing(appPort, 1);
    expect(now.messages).toEqual(['legacy']);
    expect(now.pids).not.toEqual(old.pids);
  } finally {
    if (saved === undefined) delete process.env.PM2_HOME;
    else process.env.PM2_HOME = saved;
    await upgraded?.close();
    await theirs.disconnect();
    await legacy.cleanup();
    await dataDir.cleanup();
  }
}, 60_000);
