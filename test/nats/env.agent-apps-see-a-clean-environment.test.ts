import { afterAll, beforeAll, expect } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { environApp, expectClean, SECRETS, trialEnvirons, workerEnvirons } from '../helpers/environ.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { pm2Home } from '../helpers/pm2.js';
import { tempDir } from '../helpers/tmp.js';
import { startAgent, type AgentProcess } from './agent-process.js';
import { push } from './fixtures.js';

// `hotdeploy agent --nats` started from an environment holding the service's token, NATS
// credentials and a database password: its apps, in PM2 workers and in trial starts, see none of
// them (they read their own /proc/self/environ).

const nats = useNatsServer();
let bed: ClusterBed;
let home: Awaited<ReturnType<typeof pm2Home>>;
let dump: Awaited<ReturnType<typeof tempDir>>;
let agent: AgentProcess;
let port: number;

beforeAll(async () => {
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000 });
  home = await pm2Home();
  dump = await tempDir('hd-environ-');
  port = await freePort();
  agent = await startAgent({ nats: nats.url, name: 'e', prefix: bed.names.prefix, dataDir: bed.hostDir('e'), pm2Home: home.home, port, env: SECRETS });
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await home?.cleanup();
  await bed?.close();
  await dump?.cleanup();
}, 60_000);

itWithNats('a NATS agent\'s PM2 workers and trial starts never see the agent\'s secrets', async () => {
  const first = await push(bed.app, '1.0.0', environApp({ name: 'demo', version: '1.0.0', port, dumpDir: dump.dir, decline: true, instances: 1 }));
  expect(first.deployment, JSON.stringify(first.deployment)).toMatchObject({ status: 'succeeded' });
  for (const raw of (await workerEnvirons(port, 1)).values()) expectClean(raw, ['PORT']);

  const second = await push(bed.app, '2.0.0', environApp({ name: 'demo', version: '2.0.0', port, dumpDir: dump.dir, instances: 1 }));
  expect(second.deployment, JSON.stringify(second.deployment)).toMatchObject({ status: 'succeeded', hosts: [{ path: 'reload' }] });
  const trials = await trialEnvirons(dump.dir);
  expect(trials.length).toBeGreaterThan(0);
  for (const raw of trials) expectClean(raw, ['HOTDEPLOY_TRIAL_DIR']);
  for (const raw of (await workerEnvirons(port, 1)).values()) expectClean(raw);
}, 90_000);
