import type { ActivationRequest, ActivationResult, CanarySpec, DeploymentPhase, HostPlan, HostResult, WorkerReport } from '../../../agent/messages.js';
import type { HostCommand, ReleaseRef } from '../../../agent/nats/protocol.js';
import type { ClusterResources } from '../../../agent/nats/resources.js';
import { heldBackRows } from './host-outcomes.js';
import { send, sendAll, setDesired } from './host-commands.js';
import { publishRelease, type ReleaseLookup } from './release-publish.js';
import type { Replies } from './replies.js';

type Strategy = Extract<HostCommand, { type: 'apply' }>['strategy'];
/** What an `apply` to some hosts brought back. */
export interface Applied { results: HostResult[]; workers: WorkerReport[]; lagging: string[]; phases?: DeploymentPhase[] }
/** How a host applies, and why it reloads when it does (the dry run's chain, or the strategy). */
export type Choice = { strategy: Strategy; why?: string };

export interface ClusterApplyOptions {
  /** `reload-all`: every host takes the checked graceful reload, whatever its dry run said. */
  strategy?: 'auto' | 'reload-all';
  /** How long every host has to pull, unpack and dry-run (ms, default 60 000). */
  prepareTimeoutMs?: number;
  /** How long every host has to apply (ms, default 120 000); a host silent past it is reported lagging. */
  applyTimeoutMs?: number;
  lookup: ReleaseLookup;
}

/**
 * The two phases of a deployment across hosts: `prepare` (every host pulls, verifies, unpacks and
 * dry-runs), then `apply` with each host's strategy, and the verdict over them: the desired release
 * in KV moves when every host that answered succeeded, otherwise the hosts that took it go back.
 */
export class ClusterApply {
  readonly prepareTimeoutMs: number;
  readonly applyTimeoutMs: number;

  constructor(readonly resources: ClusterResources, private readonly options: ClusterApplyOptions) {
    this.prepareTimeoutMs = options.prepareTimeoutMs ?? 60_000;
    this.applyTimeoutMs = options.applyTimeoutMs ?? 120_000;
  }

  /** The release's objects into the object store, and what hosts need to find it (release-publish.ts). */
  publish(app: string, version: string, kind: ReleaseRef['kind']): Promise<ReleaseRef> {
    return publishRelease(this.resources, this.options.lookup, app, version, kind);
  }

  async prepare(ref: ReleaseRef, deploymentId: string, hosts: string[], replies: Replies):
    Promise<{ ok: true; plans: Map<string, HostPlan> } | { ok: false; reason: string; hosts: HostResult[] }> {
    await sendAll(this.resources, hosts, { type: 'prepare', deploymentId, release: ref, expiresAt: Date.now() + this.prepareTimeoutMs });
    const answers = await replies.collect(['prepared', 'prepare-failed'], hosts, this.prepareTimeoutMs);
    const failures = new Map<string, string>();
    const codes = new Map<string, string>();
    const plans = new Map<string, HostPlan>();
    for (const host of hosts) {
      const answer = answers.get(host);
      if (!answer) failures.set(host, `no answer to prepare within ${this.prepareTimeoutMs} ms`);
      else if (answer.type === 'prepare-failed') failures.set(host, `prepare failed: ${answer.reason}`);
      else plans.set(host, answer.plan);
      if (answer?.type === 'prepare-failed' && answer.code) codes.set(host, answer.code);
    }
    if (failures.size === 0) return { ok: true, plans };
    const reason = [...failures].map(([host, why]) => `${host}: ${why}`).join('; ');
    const failed: HostResult[] = [...failures].map(([host, why]) => ({ host, status: 'failed', path: 'none', reason: why,
      ...(codes.has(host) ? { code: codes.get(host) } : {}) }));
    const held = heldBackRows(hosts.filter((h) => !failures.has(h)), `prepare failed on ${[...failures.keys()].join(', ')}`);
    return { ok: false, reason, hosts: [...failed, ...held] };
  }

  /** Hot where the dry run says every worker can take it; the checked reload elsewhere, saying why. */
  choose(plan: HostPlan, request: ActivationRequest): Choice {
    if (request.strategy === 'reload' || this.options.strategy === 'reload-all') return { strategy: 'reload', why: 'strategy reload-all' };
    if (plan.path === 'reload') return { strategy: 'reload', why: `dry run: ${plan.reason ?? 'not hot'}` };
    return { strategy: 'auto' };
  }

  /**
   * `apply` to `hosts`, then the verdict over them and `earlier` (a canary's hosts): the desired
   * release moves when every host that answered succeeded; otherwise those that took it go back.
   */
  async apply(ref: ReleaseRef, request: ActivationRequest, hosts: string[], strategies: Map<string, Choice>,
    replies: Replies, emit: (message: string) => void, earlier: Applied = { results: [], workers: [], lagging: [] }): Promise<ActivationResult> {
    const applied = await this.applyOn(ref, request, hosts, strategies, replies);
    const results = [...earlier.results, ...applied.results];
    const workers = [...earlier.workers, ...applied.workers];
    const lagging = [...earlier.lagging, ...applied.lagging];
    const bad = results.filter((r) => !r.lagging && r.status !== 'succeeded');
    if (bad.length === 0) {
      await setDesired(this.resources, ref, request.deploymentId);
      // A lagging host reads this from its durable consumer when it is back.
      await sendAll(this.resources, lagging, { type: 'converge' });
      const reason = lagging.length ? `lagging: ${lagging.join(', ')} (no answer; they converge when back)` : undefined;
      return { status: 'succeeded', path: pathOf(results), ...(reason ? { reason } : {}), workers, hosts: results };
    }
    const reason = bad.map((r) => `${r.host}: ${r.reason ?? r.status}`).join('; ');
    emit(`apply failed on ${bad.map((r) => r.host).join(', ')}; bringing the other hosts back`);
    await this.revert(request, results, replies);
    return { status: bad.some((r) => r.status === 'rolled-back') ? 'rolled-back' : 'failed', path: pathOf(results), reason, workers, hosts: results };
  }

  /** Sends `apply` to `hosts` and collects their answers; `canary`: each host runs it as a canary of all its workers. */
  async applyOn(ref: ReleaseRef, request: ActivationRequest, hosts: string[], strategies: Map<string, Choice>,
    replies: Replies, canary?: CanarySpec): Promise<Applied> {
    // A canary host answers once its own watch is over.
    const timeoutMs = this.applyTimeoutMs + (canary?.watchMs ?? 0);
    const expiresAt = Date.now() + timeoutMs;
    await Promise.all(hosts.map((host) => send(this.resources, host, { type: 'apply', deploymentId: request.deploymentId, release: ref,
      strategy: strategies.get(host)?.strategy ?? 'auto', expiresAt, ...(canary ? { canary } : {}) })));
    const answers = await replies.collect(['applied'], hosts, timeoutMs);
    const applied: Applied = { results: [], workers: [], lagging: [], phases: [] };
    for (const host of hosts) {
      const answer = answers.get(host);
      if (!answer) {
        applied.lagging.push(host);
        applied.results.push({ host, status: 'failed', path: 'none', lagging: true,
          reason: `no answer to apply within ${timeoutMs} ms; it converges to the current release when it is back` });
        continue;
      }
      const { result } = answer;
      const why = result.status === 'succeeded' ? strategies.get(host)?.why ?? result.reason : result.reason;
      applied.results.push({ host, status: result.status, path: result.path, ...(why ? { reason: why } : {}), ...(result.code ? { code: result.code } : {}) });
      applied.workers.push(...result.workers);
      applied.phases!.push(...(result.phases ?? []).map((p) => ({ ...p, host })));
    }
    return applied;
  }

  /**
   * Hosts that took the release while another failed go back to the previous one (the desired
   * release in KV, which did not move), as the deployments code does across local agents.
   */
  async revert(request: ActivationRequest, results: HostResult[], replies: Replies): Promise<void> {
    const back = results.filter((r) => r.status === 'succeeded').map((r) => r.host);
    if (back.length === 0 || request.previous === null) return;
    await setDesired(this.resources, await this.publish(request.app, request.previous.version, 'rollback'), request.deploymentId);
    await sendAll(this.resources, back, { type: 'converge', deploymentId: request.deploymentId });
    const answers = await replies.collect(['converged'], back, this.applyTimeoutMs);
    for (const host of back) {
      const app = answers.get(host)?.apps.find((a) => a.app === request.app);
      results.push({ host, status: app?.result.status ?? 'failed', path: app?.result.path ?? 'none', reverted: true,
        ...(app ? (app.result.reason ? { reason: app.result.reason } : {}) : { reason: 'no answer to the revert', lagging: true }) });
    }
  }
}

export function pathOf(results: HostResult[]): ActivationResult['path'] {
  const paths = new Set(results.filter((r) => !r.lagging).map((r) => r.path));
  if (paths.has('reload')) return 'reload';
  if (paths.has('hot')) return 'hot';
  return paths.has('start') ? 'start' : 'none';
}
