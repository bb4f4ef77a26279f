import { ping } from '../../../agent/nats/presence.js';
import type { ClusterResources } from '../../../agent/nats/resources.js';

/** How long a host has to answer "are you there?" when its agent is subscribed (a partition, a stalled process). */
export const DEFAULT_PING_TIMEOUT_MS = 2_000;

/**
 * Asks every host directly before a deployment sends anything (core NATS request/reply on each
 * host's ping subject). A JetStream publish succeeds whether or not anyone reads it, so it cannot
 * tell; a host whose agent is gone has no subscriber and the server answers "no responders" at
 * once, and a partitioned one runs into `timeoutMs`. Returns why each absent host could not be asked.
 */
export async function rollCall(resources: Pick<ClusterResources, 'nc' | 'names'>, hosts: string[], timeoutMs: number): Promise<Map<string, string>> {
  const absent = new Map<string, string>();
  await Promise.all(hosts.map(async (host) => {
    await ping(resources, host, timeoutMs).catch((err: unknown) => {
      absent.set(host, describe(err, timeoutMs));
    });
  }));
  return absent;
}

function describe(err: unknown, timeoutMs: number): string {
  const message = (err as Error).message ?? String(err);
  if (/no responders/i.test(message)) return 'its agent is not running (no responders)';
  if (/timeout/i.test(message)) return `no answer within ${timeoutMs} ms`;
  return message;
}
