import { expect } from 'vitest';
import { objectName } from '../../agent/nats/bundles.js';
import { ask } from '../helpers/apps.js';
import { itWithNats } from '../helpers/nats.js';
import { get } from '../helpers/server.js';
import { usePm2Cluster } from './agent-process.js';
import { clusterApp, push } from './fixtures.js';

// Retention on the service (keep 2) also deletes the pruned releases' bundles from the NATS object
// store, and only those: a host agent process with its own PM2 daemon keeps deploying from it.

const cluster = usePm2Cluster(['a'], {}, { keep: 2 });

async function objects(): Promise<string[]> {
  return (await cluster.bed.cluster.resources.bundles.list()).map((o) => o.name).sort();
}

itWithNats('the objects of pruned releases are deleted; those of kept releases and other objects stay', async () => {
  const { bundles } = cluster.bed.cluster.resources;
  // An object someone else keeps under the app's name (not a bundle name): never collected.
  await bundles.putBlob({ name: 'demo/delta/elsewhere.bin' }, new Uint8Array([1, 2, 3]));
  const shas: string[] = [];
  for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) {
    const body = await push(cluster.bed.app, version, clusterApp(version));
    expect(body.deployment.status, JSON.stringify(body.deployment)).toBe('succeeded');
    shas.push(body.release.sha256);
  }
  const kept = (await get(cluster.bed.app, '/v1/apps/demo/releases')).json().releases.map((r: { version: string }) => r.version);
  expect(kept).toEqual(['4.0.0', '3.0.0']);
  expect(await objects()).toEqual(['demo/delta/elsewhere.bin', objectName('demo', shas[2]!), objectName('demo', shas[3]!)].sort());
  expect((await ask(cluster.hosts[0]!.port)).message).toBe('demo@4.0.0');

  // A kept release still deploys from the store: back to 3.0.0.
  const back = await push(cluster.bed.app, '3.0.0', clusterApp('3.0.0'));
  expect(back.deployment.status).toBe('succeeded');
  expect((await ask(cluster.hosts[0]!.port)).message).toBe('demo@3.0.0');
}, 180_000);
