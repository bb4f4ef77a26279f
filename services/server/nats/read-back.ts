import type { FastifyBaseLogger } from 'fastify';
import type { ActivationRequest, ActivationResult, HostAgent, HostResult } from '../../../agent/messages.js';
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

/** How long after NATS returns the hosts' records are awaited (their agents write one every beat). */
const READ_BACK_WAIT_MS = 15_000;

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The cluster agent's deployments whose outcome waits for NATS to return, and their read-back. */
export class ReadBacks {
  private readonly pending = new Map<string, PendingReadBack>();
  private readonly listeners = new Set<(readBack: ReadBack) => void>();

  constructor(private readonly records: () => Promise<HostRecord[]>, private readonly down: () => string | undefined) {}

  /**
   * NATS was lost once apply was sent: hosts may have applied, or not. The deployment fails with
   * the cluster's code, and what each host did is read back from its own record when NATS is back.
   */
  lost(request: ActivationRequest, hosts: string[], why: string): ActivationResult {
    this.pending.set(request.deploymentId, { deploymentId: request.deploymentId, app: request.app, version: request.version, hosts, lostAt: Date.now() });
    return {
      status: 'failed', path: 'none', code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE', workers: [],
      reason: `NATS was lost after apply was sent (${why})`,
      hosts: hosts.map((host) => ({ host, status: 'unreachable', path: 'none', reason: READ_BACK_REASON })),
    };
  }

  onReadBack(listener: (readBack: ReadBack) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once no deployment of `app` waits to be read back (at most the read-back's wait). */
  async settled(app: string): Promise<void> {
    const deadline = Date.now() + READ_BACK_WAIT_MS;
    while ([...this.pending.values()].some((p) => p.app === app) && Date.now() < deadline) await pause(200);
  }

  /**
   * NATS is back: each pending deployment's hosts are read from their records once each wrote one
   * since the loss (a few of its beats at most), then the listeners correct the deployment.
   */
  async run(): Promise<void> {
    for (const pending of [...this.pending.values()]) {
      const deadline = Date.now() + READ_BACK_WAIT_MS;
      let rows: HostResult[] = [];
      for (;;) {
        const records = new Map((await this.records().catch(() => [] as HostRecord[])).map((r) => [r.host, r]));
        rows = pending.hosts.flatMap((host) => readBackRow(pending, records.get(host)) ?? []);
        if (rows.length === pending.hosts.length || Date.now() > deadline || this.down()) break;
        await pause(200);
      }
      if (this.down()) return;
      this.pending.delete(pending.deploymentId);
      const { deploymentId, app, version } = pending;
      this.listeners.forEach((listener) => listener({ deploymentId, app, version, hosts: rows }));
    }
  }
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
