import type { ActivationResult, DeploymentPhase, PhaseName } from '../../../agent/messages.js';

/** The cluster's own agent name in a phase (the hosts' phases carry their names). */
export const CLUSTER_HOST = 'nats';

/**
 * The phases of a canary across NATS hosts: the cluster's (`canary` over some hosts, then `rest` or
 * `swap-back`) and each canary host's own (its workers' canary, watch and rest), in order. Each
 * cluster phase is passed on as it starts and ends.
 */
export class ClusterPhases {
  private readonly list: DeploymentPhase[] = [];

  constructor(private readonly onPhase: (phase: DeploymentPhase) => void) {}

  start(name: PhaseName, hosts: string[], reason: string | undefined): void {
    const phase: DeploymentPhase = { name, status: 'running', host: CLUSTER_HOST, hosts, startedAt: new Date().toISOString(), ...(reason ? { reason } : {}) };
    this.list.push(phase);
    this.onPhase({ ...phase });
  }

  end(name: PhaseName, status: DeploymentPhase['status'], reason?: string): void {
    const phase = this.list.find((p) => p.name === name && p.host === CLUSTER_HOST);
    if (!phase) return;
    Object.assign(phase, { status, finishedAt: new Date().toISOString() });
    if (reason) phase.reason = reason;
    this.onPhase({ ...phase });
  }

  skip(name: PhaseName, reason: string): void {
    this.start(name, [], undefined);
    this.end(name, 'skipped', reason);
  }

  /** Phases a host reported (its own canary of all its workers). */
  add(phases: DeploymentPhase[]): void {
    this.list.push(...phases);
  }

  into(result: ActivationResult): ActivationResult {
    return { ...result, phases: [...this.list, ...(result.phases ?? [])] };
  }
}
