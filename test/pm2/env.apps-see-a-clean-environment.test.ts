import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import { freePort } from '../helpers/ports.js';
import { expectClean, environApp, parseEnviron, SECRETS, trialEnvirons, workerEnvirons } from '../helpers/environ.js';
import { push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';
import { pm2Home } from '../helpers/pm2.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/tmp.js';

// With the admin token, NATS credentials and a database password in the service's environment,
// an app reading its own /proc/self/environ (what the kernel gave the process, whatever was deleted
// from process.env since) sees none of them: not in its PM2 workers, not in a trial start. It sees
// the documented base, its own hotdeploy.env, hotdeploy's worker variables and what the operator
// passed on by name.

const PASSED = { MY_PASSED_ON: 'the operator passed this on' };

let hd: Hotdeploy;
let dump: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  Object.assign(process.env, SECRETS, PASSED);
  dump = await tempDir('hd-environ-');
  hd = await startHotdeploy({ passEnv: ['MY_PASSED_ON'] });
});

afterAll(async () => {
  await hd?.close();
  await dump?.cleanup();
  for (const name of [...Object.keys(SECRETS), ...Object.keys(PASSED)]) delete process.env[name];
});

it('PM2 workers and trial starts see the base, their own env and the passed names, never the service\'s secrets', async () => {
  const port = await freePort();
  const first = await push(hd, 'env', '1.0.0', environApp({ name: 'env', version: '1.0.0', port, dumpDir: dump.dir, decline: true }));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
  const workers = await workerEnvirons(port, 2);
  for (const raw of workers.values()) {
    expectClean(raw, ['MY_PASSED_ON']);
    expect(parseEnviron(raw).get('MY_PASSED_ON')).toBe(PASSED.MY_PASSED_ON);
  }

  // message.js declines: the next release boots in a trial start first.
  const second = await push(hd, 'env', '2.0.0', environApp({ name: 'env', version: '2.0.0', port, dumpDir: dump.dir }));
  expect([second.deployment.status, second.deployment.hosts[0]?.path], second.deployment.reason).toEqual(['succeeded', 'reload']);
  const trials = await trialEnvirons(dump.dir);
  expect(trials.length).toBeGreaterThan(0);
  for (const raw of trials) expectClean(raw, ['MY_PASSED_ON', 'HOTDEPLOY_TRIAL_DIR']);
  for (const raw of (await workerEnvirons(port, 2)).values()) expectClean(raw, ['MY_PASSED_ON']);
});

it('warns when pointed at a PM2 daemon someone else started, whose environment its apps would inherit', async () => {
  const home = await pm2Home();
  const data = await tempDir('hd-data-');
  const warnings: { obj: Record<string, unknown>; msg?: string }[] = [];
  const logger = { info: () => undefined, error: () => undefined, warn: (obj: object, msg?: string) => void warnings.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }) };
  try {
    // The operator's daemon, started by PM2's own CLI from this (secret-laden) environment.
    const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2');
    await mkdir(home.home, { recursive: true });
    await promisify(execFile)(process.execPath, [pm2Bin, 'ping'], { env: { ...process.env, PM2_HOME: home.home }, timeout: 30_000 });
    const agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger });
    try {
      await agent.ready();
      const warning = await waitFor('the foreign-daemon warning', () => warnings.find((w) => w.obj.event === 'pm2-foreign-daemon'));
      expect(warning.msg).toMatch(/not started by hotdeploy.*apps inherit its environment/);
      expect(warning.obj.foreign).toEqual(expect.arrayContaining(Object.keys(SECRETS)));
    } finally {
      await agent.close();
    }
  } finally {
    await home.cleanup();
    await data.cleanup();
  }
});

it('starts its own daemon in <dataDir>/pm2 by default, with nothing of the secrets in its environment', async () => {
  const data = await tempDir('hd-data-');
  const agent = createPm2Agent({ dataDir: data.dir, logger: { info: () => undefined, warn: () => undefined, error: () => undefined } });
  const home = path.join(data.dir, 'pm2');
  try {
    await agent.ready();
    expect(agent.client.home).toBe(home);
    const pid = Number(readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
    const raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const env = parseEnviron(raw);
    for (const name of Object.keys(SECRETS)) expect(env.has(name)).toBe(false);
    expect(env.get('PM2_HOME')).toBe(home);
  } finally {
    await agent.client.killDaemon();
    await agent.close();
    await data.cleanup();
  }
});
