import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ask, handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, rollback, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';
import { daemonPid } from '../helpers/pm2.js';
import { waitFor } from '../helpers/wait.js';
import { writeTree } from '../helpers/tmp.js';

// App names only need ^[a-z0-9][a-z0-9-]{0,62}$, and PM2 reads `2` as pm_id 2 and `all` as every
// process. Apps named 2, 0 and all deploy, fail and roll back beside two other apps and a PM2
// process of the user's own, and nothing of the others changes: PM2 pids and restarts, versions,
// answers.

const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2');
const run = promisify(execFile);

let hd: Hotdeploy;
let userPort: number;
const ports = new Map<string, number>();
/** What each app answers now (`message`), as the test expects it. */
const answers = new Map<string, string>();

interface Jlisted { name: string; pm_id: number; pid: number; pm2_env: { status: string; restart_time: number; env?: { HOTDEPLOY_APP?: string } } }

async function pm2(...args: string[]): Promise<string> {
  return (await run(process.execPath, [pm2Bin, ...args], { env: { ...process.env, PM2_HOME: hd.pm2Home }, timeout: 30_000 })).stdout;
}

/** Every PM2 process but the app's (hotdeploy's marker, or the user's process), as pm_id → pid, status, restarts. */
async function others(app: string): Promise<string[]> {
  const out = await pm2('jlist');
  const list = JSON.parse(out.slice(out.indexOf('['))) as Jlisted[];
  return list.filter((p) => p.pm2_env.env?.HOTDEPLOY_APP !== app)
    .map((p) => `${p.pm_id} ${p.name} ${p.pid} ${p.pm2_env.status} ${p.pm2_env.restart_time}`).sort();
}

/** What the other apps answer and the versions the service records for them. */
async function served(app: string): Promise<string[]> {
  const lines = [`user ${(await ask(userPort)).message}`];
  for (const [name, port] of ports) {
    if (name === app || !answers.has(name)) continue;
    const status = await appStatus(hd, name);
    const serving = await pidsServing(port, status.workers.length);
    lines.push(`${name} ${status.current} ${status.workers.map((w) => `${w.pid}@${w.version}`).join(',')} ${serving.messages.join('|')} ${serving.pids.join(',')}`);
  }
  return lines;
}

/** Runs `step` on `app` and checks that nothing of any other app or process changed. */
async function alone(app: string, step: () => Promise<void>): Promise<void> {
  const before = { procs: await others(app), served: await served(app) };
  await step();
  expect({ procs: await others(app), served: await served(app) }).toEqual(before);
}

function release(app: string, version: string, options: { boot?: 'throw'; decline?: boolean; trialFails?: boolean } = {}): Record<string, string | object> {
  const message = `${app}@${version}`;
  const decline = options.decline ? 'module.hot.decline();\n' : '';
  const trialFails = options.trialFails ? `if (process.env.HOTDEPLOY_TRIAL_DIR) throw new Error('no boot in a trial');\n` : '';
  const boot = options.boot === 'throw' ? `throw new Error('cannot start');\n` : '';
  return handlerApp({ name: app, version, port: ports.get(app)!, messageJs: `${boot}${trialFails}${decline}module.exports = ${JSON.stringify(message)};\n` });
}

beforeAll(async () => {
  hd = await startHotdeploy();
  for (const app of ['alpha', 'beta', '2', '0', 'all']) ports.set(app, await freePort());
  userPort = await freePort();
  await waitFor('the agent\'s PM2 daemon', () => daemonPid(hd.pm2Home));
  // The user's own process, pm_id 0, in the same daemon.
  const dir = path.join(hd.dataDir, 'user-app');
  await writeTree(dir, { 'server.js': `require('node:http').createServer((req, res) => res.end(JSON.stringify({ message: 'mine', pid: process.pid }))).listen(${userPort});\n` });
  await pm2('start', path.join(dir, 'server.js'), '--name', 'mine');
  await waitFor('the user\'s process answering', () => ask(userPort).catch(() => undefined));
  for (const app of ['alpha', 'beta']) {
    const { deployment } = await push(hd, app, '1.0.0', release(app, '1.0.0'));
    expect(deployment.status, deployment.reason).toBe('succeeded');
    answers.set(app, `${app}@1.0.0`);
  }
}, 90_000);

afterAll(async () => {
  await hd?.close();
});

it('an app named 2 starts, takes a hot update and rolls back, touching only its own workers', async () => {
  await alone('2', async () => {
    const first = await push(hd, '2', '1.0.0', release('2', '1.0.0'));
    expect([first.deployment.status, first.deployment.workers.map((w) => w.outcome)], first.deployment.reason).toEqual(['succeeded', ['started', 'started']]);
  });
  answers.set('2', '2@1.0.0');
  await alone('2', async () => {
    const second = await push(hd, '2', '2.0.0', release('2', '2.0.0'));
    expect([second.deployment.status, second.deployment.workers.map((w) => w.outcome)], second.deployment.reason).toEqual(['succeeded', ['hot', 'hot']]);
    expect((await pidsServing(ports.get('2')!, 2)).messages).toEqual(['2@2.0.0']);
  });
  await alone('2', async () => {
    const back = await rollback(hd, '2');
    expect([back.status, back.workers.map((w) => [w.outcome, w.version])], back.reason).toEqual(['succeeded', [['hot', '1.0.0'], ['hot', '1.0.0']]]);
    expect((await pidsServing(ports.get('2')!, 2)).messages).toEqual(['2@1.0.0']);
  });
}, 60_000);

it('an app named 0 whose first release cannot start fails alone, then starts', async () => {
  await alone('0', async () => {
    const failed = await push(hd, '0', '1.0.0', release('0', '1.0.0', { boot: 'throw' }));
    expect(failed.deployment.status).toBe('failed');
    expect(failed.deployment.reason).toMatch(/cannot start/);
  });
  await alone('0', async () => {
    const started = await push(hd, '0', '1.0.1', release('0', '1.0.1'));
    expect(started.deployment.status, started.deployment.reason).toBe('succeeded');
  });
  answers.set('0', '0@1.0.1');
}, 60_000);

it('an app named all fails its first start, starts, then rolls back a release that cannot boot, alone', async () => {
  await alone('all', async () => {
    const failed = await push(hd, 'all', '1.0.0', release('all', '1.0.0', { boot: 'throw' }));
    expect(failed.deployment.status).toBe('failed');
  });
  await alone('all', async () => {
    const started = await push(hd, 'all', '1.0.1', release('all', '1.0.1', { decline: true }));
    expect(started.deployment.status, started.deployment.reason).toBe('succeeded');
  });
  answers.set('all', 'all@1.0.1');
  await alone('all', async () => {
    const rolled = await push(hd, 'all', '2.0.0', release('all', '2.0.0', { trialFails: true }));
    expect(rolled.deployment.status, rolled.deployment.reason).toBe('rolled-back');
    expect((await pidsServing(ports.get('all')!, 2)).messages).toEqual(['all@1.0.1']);
  });
  // PM2 shows hotdeploy's processes under names it cannot read as an id or as every process.
  const names = (await others('')).map((line) => line.split(' ')[1]).sort();
  expect([...new Set(names)]).toEqual(['hd-0', 'hd-2', 'hd-all', 'hd-alpha', 'hd-beta', 'mine']);
}, 90_000);
