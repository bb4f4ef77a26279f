import { afterAll, beforeAll, expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { itWithNats, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { natsServerBinary, type NatsServer } from '../helpers/nats-server.js';
import { get } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { startOwnPm2Cluster, stopOwnPm2Cluster, type Pm2Host } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// The service loses NATS after apply was sent; the host applies anyway. When NATS is back, the
// host's own record in KV is read back, the deployment is corrected to say what the host did, and
// the reconcile brings the host back to the record. A real agent process with its own PM2 daemon.

useNatsServer();
let own: NatsServer;
let bed: ClusterBed;
let hosts: Pm2Host[] = [];

beforeAll(async () => {
  if (natsServerBinary === undefined) return;
  ({ own, bed, hosts } = await startOwnPm2Cluster(['a'], { prepareTimeoutMs: 30_000, applyTimeoutMs: 4_000 }));
}, 120_000);

afterAll(() => stopOwnPm2Cluster({ own, bed, hosts }), 60_000);

/** A release whose hot update takes `ms` to evaluate: the outage starts while it applies. */
function slowApp(version: string, ms: number): Record<string, string | object> {
  const files = clusterApp(version);
  return { ...files, 'message.js': `const until = Date.now() + ${ms}; while (Date.now() < until);\nmodule.exports = ${JSON.stringify(`demo@${version}`)};\n` };
}

async function deployment(id: string): Promise<{ status: string; code?: string; reason?: string; finishedAt?: string; hosts: { host: string; status: string; reason?: string }[] }> {
  return (await get(bed.app, `/v1/deployments/${id}`)).json();
}

itWithNats('a host that applied while the service had lost NATS is read back, the deployment corrected, and the host reconciled', async () => {
  const a = hosts[0]!;
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  const queued = await push(bed.app, '2.0.0', slowApp('2.0.0', 3_000), '?wait=false');
  // The second apply command the host reads (the first was 1.0.0's).
  await waitFor('a reading the apply of 2.0.0', async () => ((a.agent.output().match(/"type":"apply"/g) ?? []).length >= 2 ? true : undefined), 30_000);
  // Down for longer than the apply deadline: the service gives up while the host applies.
  await own.restart(async () => {
    await waitFor('the deployment given up', async () => ((await deployment(queued.deployment.id)).finishedAt ? true : undefined), 40_000);
  });
  const failed = await deployment(queued.deployment.id);
  expect(failed).toMatchObject({ status: 'failed', code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE' });
  expect(failed.reason).toMatch(/NATS was lost after apply was sent/);

  const corrected = await waitFor('the deployment corrected', async () => {
    const d = await deployment(queued.deployment.id);
    return d.reason?.includes('read back after NATS returned') ? d : undefined;
  }, 40_000).catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}\n${JSON.stringify(await deployment(queued.deployment.id))}\n${JSON.stringify((await get(bed.app, '/v1/deployments?app=demo')).json())}`);
  });
  expect(corrected.hosts).toEqual([{ host: 'a', status: 'succeeded', path: 'none', reason: 'applied 2.0.0 (read back from its record after NATS returned)' }]);
  expect(corrected.reason).toContain('read back after NATS returned: a applied 2.0.0');
  // The record says 1.0.0: the host is brought back to it by a reconcile deployment.
  expect((await get(bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  await waitFor('a back on 1.0.0', async () => ((await ask(a.port)).message === 'demo@1.0.0' ? true : undefined), 40_000);
  const kinds = (await get(bed.app, '/v1/deployments?app=demo')).json().deployments.map((d: { kind: string }) => d.kind);
  expect(kinds).toContain('reconcile');
}, 180_000);
