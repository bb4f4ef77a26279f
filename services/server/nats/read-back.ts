import type { FastifyBaseLogger } from 'fastify';
import type { HostAgent, HostResult } from '../../../agent/messages.js';
import type { HostRecord } from '../../../agent/nats/protocol.js';
import type { Deployments } from '../deployments.js';
import type { Reconciler } from '../reconcile.js';

/** A deployment whose outcome on its hosts is unknown: NATS was lost after apply was sent. */
export interface PendingReadBack {
  deploymentId: string;
  app: string;
  version: string;
  hosts: string[];
  /** When NATS was lost: only host records written after it say what the host did. */
  lostAt: number;
}

/** What the hosts' own records said once NATS was back. */
export interface ReadBack {
  deploymentId: string;
  app: string;
  version: string;
  hosts: HostResult[];
}

/** Agents that can read hosts' reports back after losing NATS (the cluster agent). */
export interface ReadingBackAgent extends HostAgent {
  onReadBack(listener: (readBack: ReadBack) => void): () => void;
}

function readsBack(agent: HostAgent): agent is ReadingBackAgent {
  return typeof (agent as Partial<ReadingBackAgent>).onReadBack === 'function';
}

export const READ_BACK_REASON = 'NATS was lost after apply was sent; what this host did is read back from its own record when NATS is back';

/** Each host's row from its record written since NATS was lost, or undefined while it has not written one. */
export function readBackRow(pending: PendingReadBack, record: HostRecord | undefined): HostResult | undefined {
  if (!record || record.heartbeatAt <= pending.lostAt) return undefined;
  const serves = record.apps[pending.app]?.version;
  return serves === pending.version
    ? { host: record.host, status: 'succeeded', path: 'none', reason: `applied ${pending.version} (read back from its record after NATS returned)` }
    : { host: record.host, status: 'not-applied', path: 'none', reason: `serves ${serves ?? 'nothing'} (read back from its record after NATS returned)` };
}

/**
 * The deployment record is corrected with what the hosts' own reports say they did (it failed when
 * NATS was lost; some hosts may have applied anyway), then the app is reconciled: hosts that moved
 * without the record are brought back to its current release by the service's one mechanism.
 */
export function followReadBack(agents: HostAgent[], deployments: Deployments, reconciler: Reconciler, log: FastifyBaseLogger): () => void {
  const undos = agents.filter(readsBack).map((agent) => agent.onReadBack((readBack) => void correct(readBack).catch((err: unknown) => {
    log.error({ app: readBack.app, deploymentId: readBack.deploymentId, err }, 'correcting a deployment from the hosts\' records failed');
  })));
  async function correct({ deploymentId, app, version, hosts }: ReadBack): Promise<void> {
    const d = await deployments.get(deploymentId);
    const said = hosts.map((h) => `${h.host} ${h.status === 'succeeded' ? `applied ${version}` : 'did not apply'}`).join(', ');
    const rows = d.hosts.map((row) => hosts.find((h) => h.host === row.host && !row.reverted) ?? row);
    await deployments.update({ ...d, hosts: rows, reason: `${d.reason ?? d.status}; read back after NATS returned: ${said}` });
    log.warn({ app, version, deploymentId, hosts: said }, 'deployment corrected from the hosts\' records');
    await reconciler.reconcile(app, `hosts read back after NATS returned (deployment ${deploymentId})`);
  }
  return () => undos.forEach((undo) => undo());
}
