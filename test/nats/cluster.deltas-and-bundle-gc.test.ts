import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import type { Fetched } from '../../agent/nats/host-releases.js';
import { uploadDelta } from '../helpers/deltas.js';
import { inProcessHost } from '../helpers/in-process-host.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { waitFor } from '../helpers/wait.js';
import { clusterApp, push } from './fixtures.js';

let bed: ClusterBed | undefined;
const hosts: TestHost[] = [];

useNatsServer();

afterEach(async () => {
  for (const host of hosts.splice(0)) {
    await host.stop();
    await host.agent.close();
  }
  await bed?.close();
});

/** A host whose `fetched` log lines are kept: how it got each release. */
async function fetchingHost(name: string, fetched: Fetched[]): Promise<TestHost> {
  if (!bed) throw new Error('no bed');
  const logger = {
    info: (obj: object) => {
      if ((obj as { event?: string }).event === 'fetched') fetched.push(obj as Fetched);
    },
    warn: () => undefined, error: () => undefined,
  };
  const host = await startHost(bed.names, inProcessHost(name), bed.hostDir(name), 300, undefined, { logger });
  hosts.push(host);
  return host;
}

const message = (version: string) => `module.exports = ${JSON.stringify(`demo@${version}`)};\n`;

/** Hosts a and b on `on` (their `fetched` lines kept), both serving 1.0.0 from its full bundle. */
async function twoHostsOn1(on: ClusterBed): Promise<{ fetchedA: Fetched[]; fetchedB: Fetched[] }> {
  const fetchedA: Fetched[] = [];
  const fetchedB: Fetched[] = [];
  await fetchingHost('a', fetchedA);
  await fetchingHost('b', fetchedB);
  expect((await push(on.app, '1.0.0', clusterApp('1.0.0'))).deployment.status).toBe('succeeded');
  return { fetchedA, fetchedB };
}

itWithNats('hosts that have the base build a delta-made release from the delta alone; a host without it takes the full bundle', async () => {
  bed = await clusterBed(testNames());
  const { fetchedA, fetchedB } = await twoHostsOn1(bed);

  const res = await uploadDelta(bed.app, 'demo', '2.0.0', { base: '1.0.0', changed: { 'message.js': message('2.0.0') } });
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json().deployment.status, res.json().deployment.reason).toBe('succeeded');
  for (const [name, fetched] of [['a', fetchedA], ['b', fetchedB]] as const) {
    expect(fetched.map((f) => [f.version, f.via])).toEqual([['1.0.0', 'bundle'], ['2.0.0', 'delta']]);
    // The delta object is a few hundred bytes: the changed file and the removal list.
    expect(fetched[1]?.bytes).toBeLessThan(fetched[0]?.bytes as number);
    expect(await readFile(path.join(bed.hostDir(name), 'releases/demo/2.0.0/message.js'), 'utf8')).toBe(message('2.0.0'));
    const files = JSON.parse(await readFile(path.join(bed.hostDir(name), 'releases/demo/2.0.0/.hotdeploy/files.json'), 'utf8')).files;
    expect(Object.keys(files).sort()).toEqual(['index.js', 'message.js', 'package.json']);
  }

  // A host that joins now has no 1.0.0: it converges to 2.0.0 from the full bundle made of its files.
  const fetchedC: Fetched[] = [];
  await fetchingHost('c', fetchedC);
  await waitFor('host c serves 2.0.0', async () => (fetchedC.some((f) => f.version === '2.0.0') ? true : undefined));
  expect(fetchedC).toEqual([expect.objectContaining({ version: '2.0.0', via: 'bundle', reason: 'no 1.0.0 here' })]);
  expect(await waitFor('host c has message.js', () => readFile(path.join(bed!.hostDir('c'), 'releases/demo/2.0.0/message.js'), 'utf8').catch(() => undefined)))
    .toBe(message('2.0.0'));
});

itWithNats('a host whose copy of the base lacks one of its files builds nothing from it: it takes the full bundle', async () => {
  bed = await clusterBed(testNames());
  const { fetchedA, fetchedB } = await twoHostsOn1(bed);
  await rm(path.join(bed.hostDir('b'), 'releases/demo/1.0.0/index.js'));

  const res = await uploadDelta(bed.app, 'demo', '2.0.0', { base: '1.0.0', changed: { 'message.js': message('2.0.0') } });
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json().deployment.status, res.json().deployment.reason).toBe('succeeded');
  expect(fetchedA.map((f) => [f.version, f.via])).toEqual([['1.0.0', 'bundle'], ['2.0.0', 'delta']]);
  expect(fetchedB.map((f) => [f.version, f.via])).toEqual([['1.0.0', 'bundle'], ['2.0.0', 'bundle']]);
  expect(fetchedB[1]?.reason).toMatch(/lacks index\.js/);
  expect(await readFile(path.join(bed.hostDir('b'), 'releases/demo/2.0.0/index.js'), 'utf8')).toBe(clusterApp('2.0.0')['index.js']);
});

itWithNats('pruning a release deletes its objects (bundle, delta, the full bundle made for it) from the object store', async () => {
  bed = await clusterBed(testNames(), {}, { keep: 2 });
  await fetchingHost('a', []);
  expect((await push(bed.app, '1.0.0', clusterApp('1.0.0'))).deployment.status).toBe('succeeded');
  for (const [base, version] of [['1.0.0', '2.0.0'], ['2.0.0', '3.0.0'], ['3.0.0', '4.0.0']] as const) {
    const res = await uploadDelta(bed.app, 'demo', version, { base, changed: { 'message.js': message(version) } });
    expect(res.json().deployment?.status, res.body).toBe('succeeded');
  }
  const { referencedObjects } = await import('../../services/server/nats/object-gc.js');
  const { ReleaseStore } = await import('../../services/server/release-store.js');
  const { resolveOptions } = await import('../../services/server/options.js');
  const store = new ReleaseStore(bed.dataDir, resolveOptions({ dataDir: bed.dataDir }));
  const names = async () => (await bed!.cluster.resources.bundles.list()).filter((i) => !i.deleted).map((i) => i.name).sort();
  // 1.0.0 and 2.0.0 are pruned (keep 2): what remains is exactly what 3.0.0 and 4.0.0 need.
  const kept = await waitFor('the pruned releases\' objects are deleted', async () => {
    const releases = (await store.list('demo')).map((m) => m.version).sort();
    const objects = await names();
    const wanted = [...await referencedObjects(store, 'demo')].sort();
    return releases.join() === '3.0.0,4.0.0' && objects.join() === wanted.join() ? objects : undefined;
  });
  // Each delta-made release: its delta and its full bundle (published for hosts without the base).
  expect(kept.filter((n) => n.startsWith('demo/deltas/'))).toHaveLength(2);
  expect(kept.filter((n) => !n.startsWith('demo/deltas/'))).toHaveLength(2);
});

itWithNats('a host refuses a replaced delta object (its sha256) and builds the release from the full bundle instead', async () => {
  bed = await clusterBed(testNames());
  const fetched: Fetched[] = [];
  await fetchingHost('a', fetched);
  expect((await push(bed.app, '1.0.0', clusterApp('1.0.0'))).deployment.status).toBe('succeeded');
  const stored = await uploadDelta(bed.app, 'demo', '2.0.0', { base: '1.0.0', changed: { 'message.js': message('2.0.0') }, query: '?activate=false' });
  expect(stored.statusCode, stored.body).toBe(201);
  const { deltaObjectName } = await import('../../agent/nats/bundles.js');
  // Someone else's bytes under the delta's name: the service finds an object there and does not publish it again.
  await bed.cluster.resources.bundles.putBlob({ name: deltaObjectName('demo', stored.json().release.sha256) }, Buffer.from('not the delta'));
  const activated = await bed.app.inject({ method: 'POST', url: '/v1/apps/demo/activate', payload: { version: '2.0.0' },
    headers: { authorization: `Bearer ${(await import('../helpers/server.js')).TOKENS.admin}` } });
  expect(activated.json().deployment.status, activated.body).toBe('succeeded');
  expect(fetched.at(-1)).toMatchObject({ version: '2.0.0', via: 'bundle', reason: expect.stringMatching(/expected/) });
  expect(await readFile(path.join(bed.hostDir('a'), 'releases/demo/2.0.0/message.js'), 'utf8')).toBe(message('2.0.0'));
});
