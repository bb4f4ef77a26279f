import type { HostAgent } from '../../agent/messages.js';
import { releasesInUse } from '../../agent/common/releases-in-use.js';
import { isNatsCluster } from './nats/cluster-agent.js';

/**
 * The release directories of the service's store that live code on this machine came from, as the
 * local agents' workers say (agent/common/releases-in-use.ts). Hosts behind NATS keep their own
 * releases and ask their own workers (agent/nats/host-agent.ts).
 */
export async function localReleasesInUse(agents: readonly HostAgent[], app: string): Promise<Set<string>> {
  const dirs = new Set<string>();
  for (const agent of agents) {
    if (isNatsCluster(agent)) continue;
    for (const dir of releasesInUse(await agent.workers(app))) dirs.add(dir);
  }
  return dirs;
}
