import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { HostAgent, WorkerState } from '../../agent/messages.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { putBundle, useChildServers } from '../helpers/child-server.js';
import { deployVersion, get, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// Retention (which asks the workers which releases they use) runs after a deployment's answer, in
// the app's queue: the answer does not wait for it, a listing asked after the answer does, and a
// crash in between leaves every release whole, which the app's next deployment prunes.

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
const children = useChildServers('hotdeploy-retention-');

/** A host agent whose one worker answers which releases it uses only once `open` is called. */
function gatedAgent(): { agent: HostAgent; asked: () => number; open: () => void } {
  let asked = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const agent: HostAgent = {
    host: 'h1',
    activate: async () => ({ status: 'succeeded', path: 'hot', workers: [] }),
    workers: async (): Promise<WorkerState[]> => {
      asked += 1;
      await gate;
      return [{ host: 'h1', pmId: 0, pid: 1, version: null, status: 'online', releases: [] }];
    },
    close: async () => undefined,
  };
  return { agent, asked: () => asked, open };
}

const onDisk = async (dataDir: string, dir: string) => (await readdir(path.join(dataDir, 'apps/demo', dir))).sort();

it('answers a push before retention asks the workers, and a listing asked after the answer waits for the pruning', async () => {
  const workers = gatedAgent();
  server = await testServer({ keep: 2, agents: [workers.agent] });
  for (const v of ['1.0.0', '2.0.0']) await deployVersion(server.app, 'demo', v);
  expect(workers.asked()).toBe(0);

  // Three releases, one over `keep`: retention asks the workers, who do not answer yet; the push has its answer.
  const third = await deployVersion(server.app, 'demo', '3.0.0');
  expect(third.deployment.status).toBe('succeeded');
  await waitFor('retention to ask the workers', () => workers.asked() === 1);
  expect(await onDisk(server.dataDir, 'releases')).toEqual(['1.0.0', '2.0.0', '3.0.0']);
  expect(await onDisk(server.dataDir, 'meta')).toEqual(['1.0.0.json', '2.0.0.json', '3.0.0.json']);

  const listing = get(server.app, '/v1/apps/demo/releases');
  workers.open();
  expect((await listing).json().releases.map((r: { version: string }) => r.version)).toEqual(['3.0.0', '2.0.0']);
  expect(await onDisk(server.dataDir, 'releases')).toEqual(['2.0.0', '3.0.0']);
  expect(await onDisk(server.dataDir, 'bundles')).toHaveLength(2);
  const audit = (await readFile(path.join(server.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(audit.filter((e) => e.what === 'prune')).toEqual([expect.objectContaining({ who: 'retention', app: 'demo', version: '1.0.0', outcome: 'removed' })]);
});

it('a crash after the answer and before retention leaves every release whole; the next deployment prunes them', async () => {
  const dir = children.dir();
  const stuck = await children.start(dir, { keep: 2, stuckWorkers: true });
  for (const v of ['1.0.0', '2.0.0', '3.0.0']) {
    const res = await putBundle(stuck.url, 'demo', v, await makeBundle(appFiles(`demo@${v}`)));
    expect(res.status).toBe(201);
    expect((await res.json() as { deployment: { status: string } }).deployment.status).toBe('succeeded');
  }
  // 3.0.0's answer came while retention waits for workers that never answer: the process dies there.
  await stuck.kill();
  expect(await onDisk(dir, 'releases')).toEqual(['1.0.0', '2.0.0', '3.0.0']);
  expect(await onDisk(dir, 'meta')).toEqual(['1.0.0.json', '2.0.0.json', '3.0.0.json']);
  expect(JSON.parse(await readFile(path.join(dir, 'apps/demo/pointers.json'), 'utf8'))).toMatchObject({ current: '3.0.0', previous: '2.0.0' });
  // The outcome was on disk before the answer: no intent is left for the next start to finish.
  expect((await readdir(path.join(dir, 'intent'))).filter((n) => n.endsWith('.json'))).toEqual([]);

  const restarted = await children.start(dir, { keep: 2 });
  const versions = async () => {
    const res = await fetch(`${restarted.url}/v1/apps/demo/releases`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    return ((await res.json()) as { releases: { version: string }[] }).releases.map((r) => r.version);
  };
  expect(await versions()).toEqual(['3.0.0', '2.0.0', '1.0.0']);
  const res = await putBundle(restarted.url, 'demo', '4.0.0', await makeBundle(appFiles('demo@4.0.0')));
  expect(res.status).toBe(201);
  expect(await versions()).toEqual(['4.0.0', '3.0.0']);
  expect(await onDisk(dir, 'releases')).toEqual(['3.0.0', '4.0.0']);
  expect(await onDisk(dir, 'bundles')).toHaveLength(2);
  await waitFor('the pruned folders to be deleted', async () => (await readdir(path.join(dir, 'tmp'))).length === 0);
});
