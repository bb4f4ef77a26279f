import { desiredKey, encode, type DesiredRelease, type HostCommand, type ReleaseRef } from '../../../agent/nats/protocol.js';
import type { ClusterResources } from '../../../agent/nats/resources.js';
import { HotError } from '../../../agent/errors.js';

/** A NATS operation that fails means the deployment cannot reach the hosts: say so by code. */
export async function natsStep<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (err) {
    throw new HotError('HOT_ERR_NATS_UNREACHABLE', `${(err as Error).message}; no host was changed by this step`, { cause: err });
  }
}

/** A command on the host's durable command subject (`<prefix>.cmd.<host>`, JetStream). */
export async function send(resources: ClusterResources, host: string, command: HostCommand): Promise<void> {
  await natsStep(resources.js.publish(resources.names.cmdSubject(host), encode(command)));
}

export async function sendAll(resources: ClusterResources, hosts: string[], command: HostCommand): Promise<void> {
  await Promise.all(hosts.map((host) => send(resources, host, command)));
}

/** The release every host of the app converges to (KV `apps.<app>`). */
export async function setDesired(resources: ClusterResources, ref: ReleaseRef, deploymentId: string): Promise<void> {
  const desired: DesiredRelease = { ...ref, deploymentId, updatedAt: new Date().toISOString() };
  await natsStep(resources.kv.put(desiredKey(ref.app), encode(desired)));
}
