import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { ask } from '../helpers/apps.js';
import { itWithNats } from '../helpers/nats.js';
import { get, post } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { usePm2Cluster } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// Rollback over NATS walks back over releases that went live, with the target chosen when the
// rollback runs: two `hotdeploy agent` processes, each with its own PM2 daemon. In order.

const cluster = usePm2Cluster(['a', 'b']);

const messages = (): Promise<string[]> => Promise.all(cluster.hosts.map(async (h) => (await ask(h.port)).message));

async function finished(id: string): Promise<{ version: string; status: string; from: string }> {
  return waitFor(`deployment ${id}`, async () => {
    const d = (await get(cluster.bed.app, `/v1/deployments/${id}`)).json();
    return d.finishedAt ? d : undefined;
  }, 60_000);
}

itWithNats('v3 failed prepare on one host and never served: rollback from v4 goes to v2, then v1, never to v3', async () => {
  await push(cluster.bed.app, '1.0.0', clusterApp('1.0.0'));
  await push(cluster.bed.app, '2.0.0', clusterApp('2.0.0'));
  // Host a cannot unpack anything (a file sits where its staging folder goes): 3.0.0 fails prepare.
  await rm(path.join(cluster.bed.hostDir('a'), 'tmp'), { recursive: true, force: true });
  await writeFile(path.join(cluster.bed.hostDir('a'), 'tmp'), '');
  try {
    const failed = await push(cluster.bed.app, '3.0.0', clusterApp('3.0.0'));
    expect(failed.deployment.status).toBe('failed');
  } finally {
    await rm(path.join(cluster.bed.hostDir('a'), 'tmp'), { force: true });
    await mkdir(path.join(cluster.bed.hostDir('a'), 'tmp'));
  }
  await push(cluster.bed.app, '4.0.0', clusterApp('4.0.0'));
  expect((await get(cluster.bed.app, '/v1/apps/demo')).json()).toMatchObject({ current: '4.0.0', previous: '2.0.0' });
  const live = (await get(cluster.bed.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string; live: boolean }) => `${r.version}:${r.live}`);
  expect(live).toEqual(['4.0.0:true', '3.0.0:false', '2.0.0:true', '1.0.0:true']);

  const back = (await post(cluster.bed.app, '/v1/apps/demo/rollback', {})).json().deployment;
  expect([back.version, back.status]).toEqual(['2.0.0', 'succeeded']);
  expect(await messages()).toEqual(['demo@2.0.0', 'demo@2.0.0']);
  const further = (await post(cluster.bed.app, '/v1/apps/demo/rollback', {})).json().deployment;
  expect([further.version, further.status]).toEqual(['1.0.0', 'succeeded']);
  expect(await messages()).toEqual(['demo@1.0.0', 'demo@1.0.0']);
}, 180_000);

itWithNats('a rollback queued behind a push goes back from that push, not from what was current when asked', async () => {
  await post(cluster.bed.app, '/v1/apps/demo/activate', { version: '2.0.0' });
  // Asked now, the rollback would go from 2.0.0 to 1.0.0; it runs after 5.0.0 went live, so it goes to 4.0.0.
  const pushed = await push(cluster.bed.app, '5.0.0', clusterApp('5.0.0'), '?wait=false');
  const asked = (await post(cluster.bed.app, '/v1/apps/demo/rollback?wait=false', {})).json().deployment;
  // What it would have been when asked (recorded while queued): the push had not gone live yet.
  expect(asked).toMatchObject({ status: 'queued', version: '1.0.0' });
  expect((await finished(pushed.deployment.id)).status).toBe('succeeded');
  const rolled = await finished(asked.id);
  expect(rolled).toMatchObject({ version: '4.0.0', status: 'succeeded', from: '5.0.0' });
  expect(await messages()).toEqual(['demo@4.0.0', 'demo@4.0.0']);
}, 180_000);
