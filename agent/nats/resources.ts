import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { NatsNames } from './protocol.js';

/** The JetStream things both sides use; each side creates what is missing, so either may start first. */
export interface ClusterResources {
  nc: NatsConnection;
  names: NatsNames;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  bundles: ObjectStore;
}

/** Commands older than this are gone from the stream; a host away longer converges from the KV at start. */
const COMMAND_MAX_AGE_MS = 7 * 24 * 3600_000;

export async function openResources(nc: NatsConnection, names: NatsNames): Promise<ClusterResources> {
  const jsm = await jetstreamManager(nc);
  const exists = await jsm.streams.info(names.stream).then(() => true, () => false);
  if (!exists) {
    await jsm.streams.add({ name: names.stream, subjects: [`${names.prefix}.cmd.>`], max_age: nanos(COMMAND_MAX_AGE_MS) })
      .catch(async (err: unknown) => {
        // Another process created it in between: fine, as long as it is there now.
        if (!(await jsm.streams.info(names.stream).then(() => true, () => false))) throw err;
      });
  }
  const kv = await new Kvm(nc).create(names.kvBucket, { history: 1 });
  const bundles = await new Objm(nc).create(names.objBucket);
  return { nc, names, js: jetstream(nc), jsm, kv, bundles };
}

/** Removes the stream and both buckets (tests, which share one NATS server, clean up with this). */
export async function destroyResources(nc: NatsConnection, names: NatsNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const stream of [names.stream, `KV_${names.kvBucket}`, `OBJ_${names.objBucket}`]) {
    await jsm.streams.delete(stream).catch(() => undefined);
  }
}
