import type { Subscription } from '@nats-io/transport-node';
import { HotError } from '../errors.js';
import { encode, hostKey, parseJson, type PingAnswer } from './protocol.js';
import type { ClusterResources } from './resources.js';

/**
 * A host's answer to "are you there?" on `<prefix>.ping.<host>` (core NATS). It runs beside the
 * command loop, so a host busy with a reload still answers; a host whose agent is gone has no
 * subscriber, and the service's request fails at once ("no responders").
 */
export function answerPings(resources: Pick<ClusterResources, 'nc' | 'names'>, host: string): Subscription {
  return resources.nc.subscribe(resources.names.pingSubject(host), {
    callback: (err, msg) => {
      if (err) return;
      const answer: PingAnswer = { host, pid: process.pid };
      msg.respond(encode(answer));
    },
  });
}

/** Asks one host; resolves with its answer, or rejects with why it could not be asked. */
export async function ping(resources: Pick<ClusterResources, 'nc' | 'names'>, host: string, timeoutMs: number): Promise<PingAnswer> {
  const msg = await resources.nc.request(resources.names.pingSubject(host), new Uint8Array(0), { timeout: timeoutMs });
  const answer = parseJson<PingAnswer>(msg.data);
  if (answer?.host !== host) throw new Error(`an unexpected answer on ${resources.names.pingSubject(host)}`);
  return answer;
}

/**
 * `hotdeploy agent --retire`: the host leaves the cluster. Its record (so it is in no deployment
 * again) and its durable consumer (the commands it would read) are removed. A host whose agent
 * still answers is refused: it would register again with its next heartbeat.
 */
export async function retireHost(resources: ClusterResources, host: string): Promise<{ removed: boolean }> {
  const answer = await ping(resources, host, 1_000).catch(() => undefined);
  if (answer) {
    throw new HotError('HOT_ERR_HOST_RUNNING', `host ${host} (pid ${answer.pid}) still answers; stop its agent first, then retire it`);
  }
  const entry = await resources.kv.get(hostKey(host));
  const removed = entry !== null && entry.value.length > 0;
  await resources.kv.purge(hostKey(host));
  await resources.jsm.consumers.delete(resources.names.stream, resources.names.durable(host)).catch(() => false);
  return { removed };
}
