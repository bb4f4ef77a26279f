import type { ActivationRequest, ActivationResult, CanarySpec, DeploymentPhase, HostResult } from '../../../agent/messages.js';
import type { ReleaseRef } from '../../../agent/nats/protocol.js';
import { canaryCount, formatCanarySize } from '../../../agent/canary-size.js';
import { pathOf, type Choice, type ClusterApply } from './cluster-apply.js';
import { ClusterPhases } from './cluster-phases.js';
import { sendAll } from './host-commands.js';
import type { Replies } from './replies.js';

/**
 * A canary across hosts: `size` of the hosts (the first by name) apply the release, each watching
 * all its workers for `watchMs` before it answers; only when every one passed do the others get
 * `apply`. A canary host that fails swaps itself back; the canary hosts that passed are reverted,
 * the others are sent `abort` and never change, and the desired release in KV never moves. A host
 * whose dry run says reload sends the whole deployment the reload path, without a canary.
 */
export async function canaryApply(cluster: ClusterApply, ref: ReleaseRef, request: ActivationRequest & { canary: CanarySpec }, hosts: string[],
  strategies: Map<string, Choice>, replies: Replies, emit: (message: string) => void, phase: (p: DeploymentPhase) => void): Promise<ActivationResult> {
  const phases = new ClusterPhases(phase);
  const reloads = hosts.filter((h) => strategies.get(h)?.strategy === 'reload');
  if (reloads.length > 0) {
    phases.skip('canary', `host(s) ${reloads.join(', ')} must reload: the reload path as a whole`);
    return phases.into(await cluster.apply(ref, request, hosts, strategies, replies, emit));
  }
  const size = canaryCount(request.canary.size, hosts.length);
  const [canaryHosts, rest] = [hosts.slice(0, size), hosts.slice(size)];
  phases.start('canary', canaryHosts, `${size} of ${hosts.length} host(s), each watched ${request.canary.watchMs} ms`);
  emit(`canary: ${canaryHosts.join(', ')} first (--canary ${formatCanarySize(request.canary.size)}), then ${rest.join(', ') || 'no other host'}`);
  const first = await cluster.applyOn(ref, request, canaryHosts, strategies, replies, { size: { percent: 100 }, watchMs: request.canary.watchMs });
  phases.add(first.phases ?? []);
  const bad = first.results.filter((r) => r.status !== 'succeeded');
  if (bad.length > 0) {
    const reason = `the canary failed: ${bad.map((r) => `${r.host}: ${r.reason ?? r.status}`).join('; ')}`;
    phases.end('canary', 'failed', reason);
    await sendAll(cluster.resources, rest, { type: 'abort', deploymentId: request.deploymentId });
    phases.start('swap-back', first.results.filter((r) => r.status === 'succeeded').map((r) => r.host), undefined);
    await cluster.revert(request, first.results, replies);
    const reverted = first.results.filter((r) => r.reverted);
    phases.end('swap-back', reverted.every((r) => r.status === 'succeeded') ? 'passed' : 'failed');
    const untouched: HostResult[] = rest.map((host) => ({ host, status: 'succeeded', path: 'none', reason: `outside the canary: never offered ${ref.version}` }));
    return phases.into({ status: bad.some((r) => r.status === 'rolled-back') ? 'rolled-back' : 'failed', path: pathOf(first.results), reason,
      workers: first.workers, hosts: [...first.results, ...untouched] });
  }
  phases.end('canary', 'passed');
  phases.start('rest', rest, `${rest.length} host(s)`);
  const result = await cluster.apply(ref, request, rest, strategies, replies, emit, first);
  phases.end('rest', result.status === 'succeeded' ? 'passed' : 'failed', result.status === 'succeeded' ? undefined : result.reason);
  return phases.into(result);
}
