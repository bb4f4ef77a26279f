import { beforeEach, expect } from 'vitest';
import { objectName, publishBundle } from '../../agent/nats/bundles.js';
import { encode, type HostCommand, type ReleaseRef } from '../../agent/nats/protocol.js';
import { buildServer } from '../../services/server/build-server.js';
import type { Deployment } from '../../services/server/deployments.js';
import { releaseLookup } from '../../services/server/nats/release-io.js';
import { resolveOptions } from '../../services/server/options.js';
import { ReleaseStore } from '../../services/server/release-store.js';
import type { InProcessHost } from '../helpers/in-process-host.js';
import { itWithNats, startHost, useClusterBed, type ClusterBed } from '../helpers/nats.js';
import { get, TOKEN_CONFIG } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { clusterApp, push } from './fixtures.js';

// Reconciliation over NATS: the hosts' own records (KV) are compared with the service's record at
// its start, and a host that (re)connects is announced to the reconciler.

const cluster = useClusterBed();
let bed: ClusterBed;
beforeEach(() => {
  bed = cluster.bed();
});
const addHost = (name: string): Promise<InProcessHost> => cluster.addHost(name);

/** The apply a service sends its hosts, sent as one that was SIGKILLed before it recorded anything would have. */
async function applyBehindTheRecord(version: string, hostNames: string[]): Promise<void> {
  const { file, sha256, manifest } = await releaseLookup(new ReleaseStore(bed.dataDir, resolveOptions({ dataDir: bed.dataDir })))('demo', version);
  const release: ReleaseRef = { app: 'demo', version, sha256, object: objectName('demo', sha256), manifest, kind: 'push' };
  const { bundles, js, names } = bed.cluster.resources;
  await publishBundle(bundles, release, file);
  for (const host of hostNames) {
    await js.publish(names.cmdSubject(host), encode({ type: 'apply', deploymentId: 'lost', release, strategy: 'auto', expiresAt: Date.now() + 60_000 } as HostCommand));
  }
}

itWithNats('at service start, hosts that applied a release the service never recorded go back to the record', async () => {
  const a = await addHost('a');
  const b = await addHost('b');
  await push(bed.app, '1.0.0', clusterApp('1.0.0'));
  await push(bed.app, '2.0.0', clusterApp('2.0.0'), '?activate=false');
  await applyBehindTheRecord('2.0.0', ['a', 'b']);
  await waitFor('both hosts on 2.0.0', () => a.served('demo') === '2.0.0' && b.served('demo') === '2.0.0');

  // The service starts again over the same data directory and NATS resources.
  await bed.app.close();
  const app = buildServer({ dataDir: bed.dataDir, tokens: TOKEN_CONFIG, logger: false, agents: [bed.cluster] });
  try {
    await app.ready();
    const reconcile = await waitFor('a finished reconcile deployment', async () =>
      ((await get(app, '/v1/deployments?app=demo')).json() as { deployments: Deployment[] }).deployments
        .find((d) => d.kind === 'reconcile' && d.finishedAt !== null), 30_000);
    expect(reconcile.status, reconcile.reason).toBe('succeeded');
    expect(reconcile.version).toBe('1.0.0');
    expect(reconcile.reason).toMatch(/^the service started: hosts differ from the current release 1\.0\.0: .*a#0 serves 2\.0\.0/);
    expect(reconcile.hosts.map((h) => `${h.host}:${h.status}`)).toEqual(['a:succeeded', 'b:succeeded']);
    expect([a.served('demo'), b.served('demo')]).toEqual(['1.0.0', '1.0.0']);
    expect((await get(app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  } finally {
    await app.close();
  }
});

itWithNats('a host that restarts or joins is announced as reconnected; one that keeps beating is not', async () => {
  const announced: string[] = [];
  const undo = bed.cluster.onReconnect?.((names) => announced.push(...names));
  try {
    await addHost('a');
    await waitFor('a announced on joining', () => announced.includes('a'));
    const b = await addHost('b');
    await waitFor('b announced on joining', () => announced.includes('b'));
    announced.length = 0;
    // b's agent stops and starts again (a new startedAt); a keeps beating meanwhile.
    await cluster.hosts().find((h) => h.name === 'b')?.stop();
    cluster.hosts().push(await startHost(bed.names, b, bed.hostDir('b')));
    await waitFor('b announced on its return', () => announced.includes('b'));
    expect(announced.filter((h) => h === 'a')).toEqual([]);
  } finally {
    undo?.();
  }
});
