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
  // Buckets that exist are opened, not created: a host agent's NATS user may read them but not
  // create or change streams (least privilege); the service, or the first process, creates them.
  const has = (stream: string): Promise<boolean> => jsm.streams.info(stream).then(() => true, () => false);
  const kv = await (await has(`KV_${names.kvBucket}`) ? new Kvm(nc).open(names.kvBucket) : new Kvm(nc).create(names.kvBucket, { history: 1 }));
  const bundles = await (await has(`OBJ_${names.objBucket}`) ? new Objm(nc).open(names.objBucket) : new Objm(nc).create(names.objBucket));
  return { nc, names, js: jetstream(nc), jsm, kv, bundles };
}

/** Removes the stream and both buckets (tests, which share one NATS server, clean up with this). */
export async function destroyResources(nc: NatsConnection, names: NatsNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const stream of [names.stream, `KV_${names.kvBucket}`, `OBJ_${names.objBucket}`]) {
    await jsm.streams.delete(stream).catch(() => undefined);
  }
}

/**
 * The keys of the state bucket that match `filter` (`hosts.*`, `apps.*`), from one stream-info
 * request (paged by the client when long), each step bounded by the client's request timeout.
 *
 * Not `KV.keys()`: its ordered consumer ends on a message with nothing pending after it, or on an
 * idle heartbeat (5 s without traffic). With hosts rewriting their keys every beat, that end can
 * fail to come for a long time, and a listing can yield one key twice and miss another. Every
 * deployment lists the hosts, so it would wait too, or leave a live host out. A key deleted or purged is still
 * listed here (its marker is the subject's last message); `kv.get` then answers an entry without a
 * value, which callers skip.
 */
export async function listKeys(resources: Pick<ClusterResources, 'jsm' | 'names'>, filter: string): Promise<string[]> {
  const prefix = `$KV.${resources.names.kvBucket}.`;
  const info = await resources.jsm.streams.info(`KV_${resources.names.kvBucket}`, { subjects_filter: `${prefix}${filter}` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
}
