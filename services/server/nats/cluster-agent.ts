import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ActivationRequest, ActivationResult, AgentEvent, AppManifest, CanarySpec, DeploymentPhase, HealthWindowEvent, HostAgent, HostObservation, HostPlan, HostResult, WatchedAgent, WorkerReport, WorkerState } from '../../../agent/messages.js';
import { deltaObjectName, objectName, publishBundle } from '../../../agent/nats/bundles.js';
import { connectNats, type NatsSettings } from '../../../agent/nats/connect.js';
import { retireHost } from '../../../agent/nats/presence.js';
import { assertToken, desiredKey, encode, hostKey, natsNames, parseHealthEvent, parseJson, type DesiredRelease, type HostCommand, type HostRecord, type ReleaseDelta, type ReleaseInstall, type ReleaseRef } from '../../../agent/nats/protocol.js';
import { listKeys, openResources, type ClusterResources } from '../../../agent/nats/resources.js';
import { HotError, isHotError } from '../../../agent/errors.js';
import { DeployError } from '../errors.js';
import { heldBackRows, refusedForUnreachable, sortByHost, unreachableRows } from './host-outcomes.js';
import { watchHostReturns } from './host-returns.js';
import { canaryCount, formatCanarySize } from '../../../agent/canary-size.js';
import { ClusterPhases } from './cluster-phases.js';
import { ReadBacks, type ReadBack } from './read-back.js';
import { hostViews, type HostView } from './host-views.js';
import { collectObjects, type RetainedObjects } from './object-gc.js';
import { LinkState } from './link-state.js';
import { Replies } from './replies.js';
import { DEFAULT_PING_TIMEOUT_MS, rollCall } from './roll-call.js';

/** What the service knows of a release: its bundle on disk, its sha256, its manifest, its installed node_modules' archive. */
export type ReleaseLookup = (app: string, version: string) => Promise<{
  file: string; sha256: string; manifest: AppManifest; install?: ReleaseInstall & { file: string };
  /** The delta the release was pushed as (its file, and what hosts check it against). */
  delta?: Omit<ReleaseDelta, 'object'> & { file: string };
}>;

export interface NatsClusterOptions {
  nats: NatsSettings;
  /** Subject, stream and bucket prefix (default `hotdeploy`). */
  prefix?: string;
  /** `reload-all`: every host takes the checked graceful reload, whatever its dry run said. */
  strategy?: 'auto' | 'reload-all';
  /** How long every host has to pull, unpack and dry-run (ms, default 60 000). */
  prepareTimeoutMs?: number;
  /** How long every host has to apply (ms, default 120 000); a host silent past it is reported lagging. */
  applyTimeoutMs?: number;
  /** How long a host has to answer "are you there?" before a deployment (ms, default 2 000). */
  pingTimeoutMs?: number;
  /** A host whose last heartbeat is older is gone (default: three of its beats). */
  staleAfterBeats?: number;
  lookup: ReleaseLookup;
  /** The objects an app's stored releases need; with it, pruned releases' objects are deleted. */
  retained?: RetainedObjects;
}

/** A dry run across hosts: one plan per host that answered, and why each other host did not. */
export interface ClusterPlan {
  hosts: HostPlan[];
  unplanned: { host: string; reason: string }[];
}

export interface NatsCluster extends WatchedAgent {
  readonly resources: ClusterResources;
  /**
   * `hotdeploy plan` on every live host that runs the app: the bundle (`bundle.file`, a staged
   * upload) goes to the object store unless a stored release already put it there, each host answers
   * a prepare marked dry run, and the object is deleted after. DEPLOY_ERR_CLUSTER_UNAVAILABLE when
   * NATS cannot be used.
   */
  planHosts(request: ActivationRequest, bundle: { file: string; sha256: string }): Promise<ClusterPlan>;
  hosts(): Promise<HostView[]>;
  /** Removes a host whose agent is stopped from the cluster (`hotdeploy agent --retire`). */
  retire(host: string): Promise<{ removed: boolean }>;
}

export function isNatsCluster(agent: HostAgent): agent is NatsCluster {
  return typeof (agent as Partial<NatsCluster>).hosts === 'function';
}

/** Connects (HOT_ERR_NATS_UNREACHABLE when it cannot) and creates the stream and buckets if missing. */
export async function createNatsCluster(options: NatsClusterOptions): Promise<NatsCluster> {
  const nc = await connectNats({ name: 'hotdeploy-service', ...options.nats });
  try {
    return new ClusterAgent(await openResources(nc, natsNames(options.prefix)), options);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

type Strategy = Extract<HostCommand, { type: 'apply' }>['strategy'];
/** What an `apply` to some hosts brought back. */
interface Applied { results: HostResult[]; workers: WorkerReport[]; lagging: string[]; phases?: DeploymentPhase[] }
/** How a host applies, and why it reloads when it does (the dry run's chain, or the strategy). */
type Choice = { strategy: Strategy; why?: string };

/**
 * Every host behind NATS as one `HostAgent` (agent/messages.ts), so the deployments code is the
 * same for one machine or many. `activate` is the two-phase deployment: prepare (every
 * live host pulls, verifies, unpacks and dry-runs) → apply (hot where every worker can, the checked
 * reload elsewhere), or abort when any host fails prepare, leaving every host on its release.
 */
class ClusterAgent implements NatsCluster {
  readonly host = 'nats';
  private readonly prepareTimeoutMs: number;
  private readonly applyTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly link: LinkState;
  /** The hosts of the last listing, for a deployment that cannot list them (NATS down). */
  private known: string[] = [];
  private readonly returnListeners = new Set<(hosts: string[]) => void>();
  private readonly readBacks: ReadBacks;
  private watchingReturns: Promise<() => void> | undefined;
  private readonly windowListeners = new Set<(event: HealthWindowEvent) => void>();
  private health: Subscription | undefined;

  constructor(readonly resources: ClusterResources, private readonly options: NatsClusterOptions) {
    this.prepareTimeoutMs = options.prepareTimeoutMs ?? 60_000;
    this.applyTimeoutMs = options.applyTimeoutMs ?? 120_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.link = new LinkState(resources.nc);
    this.readBacks = new ReadBacks(() => this.records(), () => this.link.unavailable);
    this.link.onUp(() => void this.readBacks.run());
  }

  /** The hosts' forwarded health-window reports (`<prefix>.health.<host>`), each checked against its subject's host. */
  onHealthWindow(listener: (event: HealthWindowEvent) => void): () => void {
    this.windowListeners.add(listener);
    this.health ??= this.nc.subscribe(this.resources.names.healthSubject('*'), {
      callback: (err, msg) => {
        if (err) return;
        const event = parseHealthEvent(msg.data, msg.subject.slice(msg.subject.lastIndexOf('.') + 1));
        if (event) for (const l of this.windowListeners) l(event);
      },
    });
    return () => this.windowListeners.delete(listener);
  }

  private get nc(): NatsConnection {
    return this.resources.nc;
  }

  async activate(request: ActivationRequest, onEvent?: (event: AgentEvent) => void): Promise<ActivationResult> {
    const emit = (message: string): void => onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: 'phase', message });
    const phase = (p: DeploymentPhase): void => onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: 'phase', message: `${p.name} ${p.status}`, phase: p });
    const down = this.link.unavailable;
    if (down) return this.unavailable(down);
    try {
      return await this.deploy(request, emit, phase);
    } catch (err) {
      if (isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) return this.unavailable(err.message);
      throw err;
    }
  }

  onReadBack(listener: (readBack: ReadBack) => void): () => void {
    return this.readBacks.onReadBack(listener);
  }

  /** NATS cannot be used: every host the service last knew is listed, none could be asked. */
  private unavailable(why: string): ActivationResult {
    const reason = `NATS is unreachable (${why}); no host was asked`;
    return {
      status: 'failed', path: 'none', code: 'DEPLOY_ERR_CLUSTER_UNAVAILABLE', reason, workers: [],
      hosts: this.known.map((host) => ({ host, status: 'unreachable', path: 'none', reason })),
    };
  }

  private async deploy(request: ActivationRequest, emit: (message: string) => void, phase: (p: DeploymentPhase) => void): Promise<ActivationResult> {
    const hosts = (await this.records()).filter((r) => runsApp(r, request.app)).map((r) => r.host).sort();
    const absent = await rollCall(this.resources, hosts, this.pingTimeoutMs);
    const reachable = hosts.filter((h) => !absent.has(h));
    if (absent.size > 0 && !request.allowUnreachable) {
      emit(`not started: ${[...absent.keys()].join(', ')} could not be asked`);
      return refusedForUnreachable(absent, reachable);
    }
    const ref = await this.publish(request.app, request.version, request.kind);
    const skipped = unreachableRows(absent, true);
    if (reachable.length === 0) {
      await this.setDesired(ref, request.deploymentId);
      const reason = hosts.length === 0 ? 'no host agent is registered; hosts converge to this release when they start' : undefined;
      return { status: 'succeeded', path: 'none', ...(reason ? { reason } : {}), workers: [], hosts: skipped };
    }
    const replies = new Replies(this.nc, this.resources.names.replySubject(request.deploymentId));
    try {
      emit(`prepare on ${reachable.length} host(s): ${reachable.join(', ')}${absent.size ? `; unreachable, allowed: ${[...absent.keys()].join(', ')}` : ''}`);
      const prepared = await this.prepare(ref, request.deploymentId, reachable, replies);
      if (!prepared.ok) {
        emit(`prepare failed: ${prepared.reason}; aborting on every host`);
        await this.sendAll(reachable, { type: 'abort', deploymentId: request.deploymentId });
        return { status: 'failed', path: 'none', reason: prepared.reason, workers: [], hosts: sortByHost([...prepared.hosts, ...skipped]) };
      }
      const strategies = new Map([...prepared.plans].map(([host, plan]) => [host, this.choose(plan, request)]));
      emit(`apply: ${reachable.map((h) => `${h} ${strategies.get(h)?.strategy}`).join(', ')}`);
      const applying = request.canary
        ? this.canaryApply(ref, { ...request, canary: request.canary }, reachable, strategies, replies, emit, phase)
        : this.apply(ref, request, reachable, strategies, replies, emit);
      const result = await applying.catch((err: unknown) => {
        if (!isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) throw err;
        return this.readBacks.lost(request, reachable, err.message);
      });
      return { ...result, hosts: sortByHost([...result.hosts ?? [], ...skipped]) };
    } finally {
      replies.close();
    }
  }

  /** The release's bundle into the object store (once per sha256), and what hosts need to find it. */
  private async publish(app: string, version: string, kind: ReleaseRef['kind']): Promise<ReleaseRef> {
    const { file, sha256, manifest, install, delta } = await this.options.lookup(app, version);
    let ref: ReleaseRef = { app, version, sha256, object: objectName(app, sha256), manifest, kind };
    await this.nats(publishBundle(this.resources.bundles, ref, file));
    if (delta) {
      // Hosts with the base pull these few bytes instead of the bundle.
      const { file: deltaFile, ...wire } = delta;
      ref = { ...ref, delta: { ...wire, object: deltaObjectName(app, delta.sha256) } };
      await this.nats(publishBundle(this.resources.bundles, ref.delta as ReleaseDelta, deltaFile));
    }
    if (!install) return ref;
    // The installed node_modules, once per install key: hosts take them instead of installing.
    const { file: archive, ...wire } = install;
    await this.nats(publishBundle(this.resources.bundles, wire, archive));
    return { ...ref, install: wire };
  }

  private async prepare(ref: ReleaseRef, deploymentId: string, hosts: string[], replies: Replies):
    Promise<{ ok: true; plans: Map<string, HostPlan> } | { ok: false; reason: string; hosts: HostResult[] }> {
    await this.sendAll(hosts, { type: 'prepare', deploymentId, release: ref, expiresAt: Date.now() + this.prepareTimeoutMs });
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

  async planHosts(request: ActivationRequest, bundle: { file: string; sha256: string }): Promise<ClusterPlan> {
    const down = this.link.unavailable;
    if (down) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', down);
    try {
      return await this.dryRun(request, bundle);
    } catch (err) {
      if (isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', err.message);
      throw err;
    }
  }

  private async dryRun(request: ActivationRequest, bundle: { file: string; sha256: string }): Promise<ClusterPlan> {
    const hosts = (await this.records()).filter((r) => runsApp(r, request.app)).map((r) => r.host).sort();
    const absent = await rollCall(this.resources, hosts, this.pingTimeoutMs);
    const unplanned = [...absent].map(([host, why]) => ({ host, reason: `unreachable: ${why}` }));
    const reachable = hosts.filter((h) => !absent.has(h));
    if (reachable.length === 0) return { hosts: [], unplanned };
    // A stored release's object is read as it is; otherwise the dry run's own object, never a release's name.
    const stored = objectName(request.app, bundle.sha256);
    const reuse = (await this.nats(this.resources.bundles.info(stored))) !== null;
    const object = reuse ? stored : `${request.app}/plan/${request.deploymentId}.tgz`;
    const ref: ReleaseRef = { app: request.app, version: request.version, sha256: bundle.sha256, object, manifest: request.manifest, kind: request.kind };
    const replies = new Replies(this.nc, this.resources.names.replySubject(request.deploymentId));
    try {
      if (!reuse) await this.nats(publishBundle(this.resources.bundles, ref, bundle.file));
      await this.sendAll(reachable, { type: 'prepare', deploymentId: request.deploymentId, release: ref, expiresAt: Date.now() + this.prepareTimeoutMs, dryRun: true });
      const answers = await replies.collect(['prepared', 'prepare-failed'], reachable, this.prepareTimeoutMs);
      const plans: HostPlan[] = [];
      for (const host of reachable) {
        const answer = answers.get(host);
        if (answer?.type === 'prepared') plans.push({ ...answer.plan, host });
        else unplanned.push({ host, reason: answer ? `the dry run failed: ${answer.reason}` : `no answer within ${this.prepareTimeoutMs} ms` });
      }
      return { hosts: plans, unplanned: unplanned.sort((a, b) => (a.host < b.host ? -1 : 1)) };
    } finally {
      replies.close();
      if (!reuse) await this.resources.bundles.delete(object).catch(() => undefined);
    }
  }

  /** Hot where the dry run says every worker can take it; the checked reload elsewhere, saying why. */
  private choose(plan: HostPlan, request: ActivationRequest): Choice {
    if (request.strategy === 'reload' || this.options.strategy === 'reload-all') return { strategy: 'reload', why: 'strategy reload-all' };
    if (plan.path === 'reload') return { strategy: 'reload', why: `dry run: ${plan.reason ?? 'not hot'}` };
    return { strategy: 'auto' };
  }

  /**
   * `apply` to `hosts`, then the verdict over them and `earlier` (a canary's hosts): the desired
   * release moves when every host that answered succeeded; otherwise those that took it go back.
   */
  private async apply(ref: ReleaseRef, request: ActivationRequest, hosts: string[], strategies: Map<string, Choice>,
    replies: Replies, emit: (message: string) => void, earlier: Applied = { results: [], workers: [], lagging: [] }): Promise<ActivationResult> {
    const applied = await this.applyOn(ref, request, hosts, strategies, replies);
    const results = [...earlier.results, ...applied.results];
    const workers = [...earlier.workers, ...applied.workers];
    const lagging = [...earlier.lagging, ...applied.lagging];
    const bad = results.filter((r) => !r.lagging && r.status !== 'succeeded');
    if (bad.length === 0) {
      await this.setDesired(ref, request.deploymentId);
      // A lagging host reads this from its durable consumer when it is back.
      await this.sendAll(lagging, { type: 'converge' });
      const reason = lagging.length ? `lagging: ${lagging.join(', ')} (no answer; they converge when back)` : undefined;
      return { status: 'succeeded', path: pathOf(results), ...(reason ? { reason } : {}), workers, hosts: results };
    }
    const reason = bad.map((r) => `${r.host}: ${r.reason ?? r.status}`).join('; ');
    emit(`apply failed on ${bad.map((r) => r.host).join(', ')}; bringing the other hosts back`);
    await this.revert(request, results, replies);
    return { status: bad.some((r) => r.status === 'rolled-back') ? 'rolled-back' : 'failed', path: pathOf(results), reason, workers, hosts: results };
  }

  /** Sends `apply` to `hosts` and collects their answers; `canary`: each host runs it as a canary of all its workers. */
  private async applyOn(ref: ReleaseRef, request: ActivationRequest, hosts: string[], strategies: Map<string, Choice>,
    replies: Replies, canary?: CanarySpec): Promise<Applied> {
    // A canary host answers once its own watch is over.
    const timeoutMs = this.applyTimeoutMs + (canary?.watchMs ?? 0);
    const expiresAt = Date.now() + timeoutMs;
    await Promise.all(hosts.map((host) => this.send(host, { type: 'apply', deploymentId: request.deploymentId, release: ref,
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
   * A canary across hosts: `size` of the hosts (the first by name) apply the release, each watching
   * all its workers for `watchMs` before it answers; only when every one passed do the others get
   * `apply`. A canary host that fails swaps itself back; the canary hosts that passed are reverted,
   * the others are sent `abort` and never change, and the desired release in KV never moves. A host
   * whose dry run says reload sends the whole deployment the reload path, without a canary.
   */
  private async canaryApply(ref: ReleaseRef, request: ActivationRequest & { canary: CanarySpec }, hosts: string[], strategies: Map<string, Choice>,
    replies: Replies, emit: (message: string) => void, phase: (p: DeploymentPhase) => void): Promise<ActivationResult> {
    const phases = new ClusterPhases(phase);
    const reloads = hosts.filter((h) => strategies.get(h)?.strategy === 'reload');
    if (reloads.length > 0) {
      phases.skip('canary', `host(s) ${reloads.join(', ')} must reload: the reload path as a whole`);
      return phases.into(await this.apply(ref, request, hosts, strategies, replies, emit));
    }
    const size = canaryCount(request.canary.size, hosts.length);
    const [canaryHosts, rest] = [hosts.slice(0, size), hosts.slice(size)];
    phases.start('canary', canaryHosts, `${size} of ${hosts.length} host(s), each watched ${request.canary.watchMs} ms`);
    emit(`canary: ${canaryHosts.join(', ')} first (--canary ${formatCanarySize(request.canary.size)}), then ${rest.join(', ') || 'no other host'}`);
    const first = await this.applyOn(ref, request, canaryHosts, strategies, replies, { size: { percent: 100 }, watchMs: request.canary.watchMs });
    phases.add(first.phases ?? []);
    const bad = first.results.filter((r) => r.status !== 'succeeded');
    if (bad.length > 0) {
      const reason = `the canary failed: ${bad.map((r) => `${r.host}: ${r.reason ?? r.status}`).join('; ')}`;
      phases.end('canary', 'failed', reason);
      await this.sendAll(rest, { type: 'abort', deploymentId: request.deploymentId });
      phases.start('swap-back', first.results.filter((r) => r.status === 'succeeded').map((r) => r.host), undefined);
      await this.revert(request, first.results, replies);
      const reverted = first.results.filter((r) => r.reverted);
      phases.end('swap-back', reverted.every((r) => r.status === 'succeeded') ? 'passed' : 'failed');
      const untouched: HostResult[] = rest.map((host) => ({ host, status: 'succeeded', path: 'none', reason: `outside the canary: never offered ${ref.version}` }));
      return phases.into({ status: bad.some((r) => r.status === 'rolled-back') ? 'rolled-back' : 'failed', path: pathOf(first.results), reason,
        workers: first.workers, hosts: [...first.results, ...untouched] });
    }
    phases.end('canary', 'passed');
    phases.start('rest', rest, `${rest.length} host(s)`);
    const result = await this.apply(ref, request, rest, strategies, replies, emit, first);
    phases.end('rest', result.status === 'succeeded' ? 'passed' : 'failed', result.status === 'succeeded' ? undefined : result.reason);
    return phases.into(result);
  }

  /**
   * Hosts that took the release while another failed go back to the previous one (the desired
   * release in KV, which did not move), as the deployments code does across local agents.
   */
  private async revert(request: ActivationRequest, results: HostResult[], replies: Replies): Promise<void> {
    const back = results.filter((r) => r.status === 'succeeded').map((r) => r.host);
    if (back.length === 0 || request.previous === null) return;
    await this.setDesired(await this.publish(request.app, request.previous.version, 'rollback'), request.deploymentId);
    await this.sendAll(back, { type: 'converge', deploymentId: request.deploymentId });
    const answers = await replies.collect(['converged'], back, this.applyTimeoutMs);
    for (const host of back) {
      const app = answers.get(host)?.apps.find((a) => a.app === request.app);
      results.push({ host, status: app?.result.status ?? 'failed', path: app?.result.path ?? 'none', reverted: true,
        ...(app ? (app.result.reason ? { reason: app.result.reason } : {}) : { reason: 'no answer to the revert', lagging: true }) });
    }
  }

  private async send(host: string, command: HostCommand): Promise<void> {
    await this.nats(this.resources.js.publish(this.resources.names.cmdSubject(host), encode(command)));
  }

  private async sendAll(hosts: string[], command: HostCommand): Promise<void> {
    await Promise.all(hosts.map((host) => this.send(host, command)));
  }

  private async setDesired(ref: ReleaseRef, deploymentId: string): Promise<void> {
    const desired: DesiredRelease = { ...ref, deploymentId, updatedAt: new Date().toISOString() };
    await this.nats(this.resources.kv.put(desiredKey(ref.app), encode(desired)));
  }

  /** A NATS operation that fails means the deployment cannot reach the hosts: say so by code. */
  private async nats<T>(operation: Promise<T>): Promise<T> {
    try {
      return await operation;
    } catch (err) {
      throw new HotError('HOT_ERR_NATS_UNREACHABLE', `${(err as Error).message}; no host was changed by this step`, { cause: err });
    }
  }

  private alive(record: HostRecord, at = Date.now()): boolean {
    return at - record.heartbeatAt < record.heartbeatMs * (this.options.staleAfterBeats ?? 3);
  }

  /** Every registered host (a retired one has no record); remembered for when NATS is down. */
  private async records(): Promise<HostRecord[]> {
    const records = await this.nats(this.values<HostRecord>(hostKey('*')));
    this.known = records.map((r) => r.host).sort();
    return records;
  }

  private async values<T>(filter: string): Promise<T[]> {
    const out: T[] = [];
    for (const key of await listKeys(this.resources, filter)) {
      const entry = await this.resources.kv.get(key);
      const value = entry?.value.length ? parseJson<T>(entry.value) : undefined;
      if (value) out.push(value);
    }
    return out;
  }

  async hosts(): Promise<HostView[]> {
    const down = this.link.unavailable;
    if (down) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', down);
    const desired = new Map((await this.values<DesiredRelease>(desiredKey('*'))).map((d) => [d.app, d.version]));
    return hostViews(await this.records(), desired, (record) => this.alive(record));
  }

  async retire(host: string): Promise<{ removed: boolean }> {
    const down = this.link.unavailable;
    if (down) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', down);
    try {
      return await retireHost(this.resources, assertToken(host, 'host name'));
    } catch (err) {
      if (isHotError(err, 'HOT_ERR_HOST_RUNNING')) throw new DeployError('DEPLOY_ERR_HOST_RUNNING', err.message);
      if (isHotError(err, 'HOT_ERR_NATS_SETTINGS')) throw new DeployError('DEPLOY_ERR_VALIDATION', err.message);
      throw err;
    }
  }

  /**
   * Object-store garbage collection after retention (object-gc.ts): the app's bundles, deltas and
   * node_modules archives no stored release needs; a failure is left for the next prune's sweep.
   */
  async pruned(app: string): Promise<void> {
    if (!this.options.retained || this.link.unavailable) return;
    await collectObjects(this.resources.bundles, app, await this.options.retained(app));
  }

  async workers(app: string): Promise<WorkerState[]> {
    const down = this.link.unavailable;
    if (down) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', down);
    return (await this.records()).filter((r) => this.alive(r)).flatMap((r) => r.apps[app]?.workers ?? []);
  }

  /** Every live host as its last record says: the release it serves (its pointer) and its workers. */
  async observe(app: string): Promise<HostObservation[]> {
    // The hosts' first reports after NATS returned say what they did: a reconcile must not move them before that is recorded.
    await this.readBacks.settled(app);
    return (await this.records()).filter((r) => this.alive(r) && runsApp(r, app)).sort((a, b) => (a.host < b.host ? -1 : 1))
      .map((r) => ({ host: r.host, pointer: r.apps[app]?.version ?? null, workers: r.apps[app]?.workers ?? [] }));
  }

  /** Hosts that join, restart or come back after going stale (host-returns.ts). */
  onReconnect(listener: (hosts: string[]) => void): () => void {
    this.returnListeners.add(listener);
    this.watchingReturns ??= watchHostReturns(this.resources.kv, (record, at) => !this.alive(record, at),
      (host) => this.returnListeners.forEach((l) => l([host])));
    this.watchingReturns.catch(() => undefined);
    return () => this.returnListeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.watchingReturns?.then((stop) => stop(), () => undefined);
    this.health?.unsubscribe();
    if (!this.nc.isClosed()) await this.nc.close();
  }
}

function runsApp(record: HostRecord, app: string): boolean {
  return record.runs === undefined || record.runs.includes(app);
}

function pathOf(results: HostResult[]): ActivationResult['path'] {
  const paths = new Set(results.filter((r) => !r.lagging).map((r) => r.path));
  if (paths.has('reload')) return 'reload';
  if (paths.has('hot')) return 'hot';
  return paths.has('start') ? 'start' : 'none';
}
