import { afterAll, beforeAll, expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { makeBundle } from '../helpers/bundles.js';
import { clusterBed, itWithNats, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { pm2Home } from '../helpers/pm2.js';
import { upload } from '../helpers/server.js';
import { startAgent, type AgentProcess } from './agent-process.js';
import { clusterApp } from './fixtures.js';

// A host behind NATS checks the port at prepare, where it is known (the host's settings): a release
// on another app's port there fails the deployment with the host's code before any host changes.

const nats = useNatsServer();
let bed: ClusterBed;
let home: Awaited<ReturnType<typeof pm2Home>>;
let agent: AgentProcess;
let port: number;

beforeAll(async () => {
  bed = await clusterBed(testNames(), { prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000 });
  home = await pm2Home();
  port = await freePort();
  agent = await startAgent({ nats: nats.url, name: 'p', prefix: bed.names.prefix, dataDir: bed.hostDir('p'), pm2Home: home.home, port });
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await home?.cleanup();
  await bed?.close();
}, 60_000);

itWithNats('a release on another app\'s port fails at prepare with DEPLOY_ERR_PORT_CONFLICT, and the first app keeps serving', async () => {
  const first = await upload(bed.app, 'demo', '1.0.0', await makeBundle(clusterApp('1.0.0', { port })));
  expect(first.json().deployment, first.body).toMatchObject({ status: 'succeeded' });
  const before = await ask(port);

  const other = { ...clusterApp('1.0.0', { port }), 'package.json': { name: 'other', version: '1.0.0', main: 'index.js', hotdeploy: { instances: 1, port } } };
  const res = await upload(bed.app, 'other', '1.0.0', await makeBundle(other));
  const deployment = res.json().deployment as { status: string; reason: string; hosts: { host: string; code?: string }[] };
  expect(deployment.status).toBe('failed');
  expect(deployment.reason).toMatch(new RegExp(`port ${port} belongs to app demo`));
  expect(deployment.hosts).toMatchObject([{ host: 'p', code: 'DEPLOY_ERR_PORT_CONFLICT' }]);
  expect(await ask(port)).toEqual(before);
}, 60_000);
