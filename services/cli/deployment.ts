import { formatCanarySize } from '../../agent/canary-size.js';
import type { CanarySpec, DeploymentPhase, HostResult, WorkerReport } from '../../agent/messages.js';
import { ExitCode, type ExitCodeValue } from './errors.js';
import { type Io, oneLine, renderTable, renderWorkers, writeJson, writeLine } from './output.js';

/** A deployment as the service reports it (`GET /v1/deployments/:id`, and inside write answers). */
export interface DeploymentView {
  id: string;
  app?: string;
  version?: string;
  kind?: string;
  status: string;
  reason?: string;
  hosts?: HostResult[];
  workers?: WorkerReport[];
  canary?: CanarySpec & { source?: string };
  phases?: DeploymentPhase[];
}

/** Worker outcomes that mean the new release is not what runs: failed | rolled-back. */
const FAILED_OUTCOMES = new Set(['failed', 'rolled-back']);

/**
 * Exit 0 when every worker went hot, reloaded, started or was unchanged (or the deployment is still
 * queued / running after `--no-wait`); non-zero when the deployment or any worker failed or rolled back.
 */
export function deploymentExitCode(deployment: DeploymentView | undefined): ExitCodeValue {
  if (!deployment) return ExitCode.ok;
  if (FAILED_OUTCOMES.has(deployment.status)) return ExitCode.deployFailed;
  if ((deployment.workers ?? []).some((w) => FAILED_OUTCOMES.has(w.outcome))) return ExitCode.deployFailed;
  return ExitCode.ok;
}

export function printDeployment(io: Io, deployment: DeploymentView): void {
  const subject = deployment.version ? ` ${deployment.app ?? ''}@${deployment.version}` : '';
  const reason = deployment.reason ? oneLine(deployment.reason) : '';
  writeLine(io.out, `deployment ${deployment.id}${subject}: ${deployment.status}${reason ? ` (${reason})` : ''}`);
  if (deployment.canary) writeLine(io.out, renderPhases(deployment.canary, deployment.phases ?? []));
  // Each host's reason once: in the line above when the deployment's reason carries it, else on its own line.
  const said = new Map<string, Set<string>>();
  for (const host of deployment.hosts ?? []) {
    const why = oneLine(host.reason ?? '');
    if (why === '') continue;
    if (!said.has(host.host)) said.set(host.host, new Set());
    said.get(host.host)?.add(why);
    if (!reason.includes(why)) writeLine(io.out, `host ${host.host}${host.reverted ? ' (reverted)' : ''}: ${host.path}, ${host.status}: ${why}`);
  }
  if (deployment.workers) writeLine(io.out, renderWorkers(deployment.workers, said));
}

/**
 * What push, activate and rollback answer: `{ release, deployment, message? }`; `deployment` is null
 * when nothing had to change (the version is already current, or `--no-activate`).
 */
export interface WriteAnswer {
  deployment?: DeploymentView | null;
  message?: string;
}

/** Shared ending of every write command: the JSON or the table, and the exit code of the outcome. */
export function reportDeployment(io: Io, json: boolean, body: WriteAnswer, idle = 'nothing to deploy'): ExitCodeValue {
  const deployment = body.deployment ?? undefined;
  if (json) writeJson(io, body);
  else if (deployment) printDeployment(io, deployment);
  else writeLine(io.out, body.message ?? idle);
  return deploymentExitCode(deployment);
}

/**
 * A canary deployment's phases, one row each: where it ran (a host's workers, or the NATS hosts),
 * how long it took, what the watch saw, and why it failed or was skipped.
 */
export function renderPhases(canary: CanarySpec & { source?: string }, phases: DeploymentPhase[]): string {
  const from = canary.source === 'settings' ? ', from the app\'s settings' : '';
  const head = `canary ${formatCanarySize(canary.size)}, watched ${canary.watchMs} ms${from}`;
  if (phases.length === 0) return `${head}: no phase reported`;
  const rows = phases.map((p) => {
    const on = p.hosts ? `hosts ${p.hosts.join(', ') || '-'}` : `${p.host}#${p.workers?.join(',') || '-'}`;
    const took = p.finishedAt ? `${Date.parse(p.finishedAt) - Date.parse(p.startedAt)}` : '…';
    const seen = p.watch ? `${p.watch.probes} probes, ${p.watch.errors}/${p.watch.requests} errors` : '';
    return [p.name, p.status, on, took, seen, oneLine(p.reason ?? '')];
  });
  return `${head}\n${renderTable(['phase', 'status', 'on', 'ms', 'watch saw', 'reason'], rows, true)}`;
}
