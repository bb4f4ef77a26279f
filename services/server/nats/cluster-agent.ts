import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ActivationRequest, ActivationResult, AgentEvent, DeploymentPhase, HealthWindowEvent, HostAgent, HostObservation, WatchedAgent, WorkerState } from '../../../agent/messages.js';
import { connectNats, type NatsSettings } from '../../../agent/nats/connect.js';
import { retireHost } from '../../../agent/nats/presence.js';
import { assertToken, desiredKey, hostKey, natsNames, parseHealthEvent, parseJson, type DesiredRelease, type HostRecord } from '../../../agent/nats/protocol.js';
import { listKeys, openResources, type ClusterResources } from '../../../agent/nats/resources.js';
import { isHotError } from '../../../agent/errors.js';
import { DeployError } from '../errors.js';
import { refusedForUnreachable, sortByHost, unreachableRows } from './host-outcomes.js';
import { watchHostReturns } from './host-returns.js';
import { ClusterApply, type ClusterApplyOptions } from './cluster-apply.js';
import { canaryApply } from './cluster-canary.js';
import { dryRun, type ClusterPlan } from './cluster-plan.js';
import { natsStep, sendAll, setDesired } from './host-commands.js';
import { ReadBacks, type ReadBack } from './read-back.js';
import { hostViews, type HostView } from './host-views.js';
import { collectObjects, type RetainedObjects } from './object-gc.js';
import { LinkState } from './link-state.js';
import { Replies } from './replies.js';
import { DEFAULT_PING_TIMEOUT_MS, rollCall } from './roll-call.js';

export type { ClusterPlan } from './cluster-plan.js';
export type { ReleaseLookup } from './release-publish.js';

/** The cluster agent's settings; its deployments' strategy, deadlines and release lookup are ClusterApplyOptions. */
export interface NatsClusterOptions extends ClusterApplyOptions {
  nats: NatsSettings;
  /** Subject, stream and bucket prefix (default `hotdeploy`). */
  prefix?: string;
  /** How long a host has to answer "are you there?" before a deployment (ms, default 2 000). */
  pingTimeoutMs?: number;
  /** A host whose last heartbeat is older is gone (default: three of its beats). */
  staleAfterBeats?: number;
  /** The objects an app's stored releases need; with it, pruned releases' objects are deleted. */
  retained?: RetainedObjects;
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

/**
 * Every host behind NATS as one `HostAgent` (agent/messages.ts), so the deployments code is the
 * same for one machine or many. `activate` is the two-phase deployment: prepare (every
 * live host pulls, verifies, unpacks and dry-runs) → apply (hot where every worker can, the checked
 * reload elsewhere), or abort when any host fails prepare, leaving every host on its release.
 */
class ClusterAgent implements NatsCluster {
  readonly host = 'nats';
  private readonly pingTimeoutMs: number;
  /** Prepare, apply and revert across hosts (cluster-apply.ts). */
  private readonly steps: ClusterApply;
  private readonly link: LinkState;
  /** The hosts of the last listing, for a deployment that cannot list them (NATS down). */
  private known: string[] = [];
  private readonly returnListeners = new Set<(hosts: string[]) => void>();
  private readonly readBacks: ReadBacks;
  private watchingReturns: Promise<() => void> | undefined;
  private readonly windowListeners = new Set<(event: HealthWindowEvent) => void>();
  private health: Subscription | undefined;

  constructor(readonly resources: ClusterResources, private readonly options: NatsClusterOptions) {
    this.pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.steps = new ClusterApply(resources, options);
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
    const hosts = await this.appHosts(request.app);
    const absent = await rollCall(this.resources, hosts, this.pingTimeoutMs);
    const reachable = hosts.filter((h) => !absent.has(h));
    if (absent.size > 0 && !request.allowUnreachable) {
      emit(`not started: ${[...absent.keys()].join(', ')} could not be asked`);
      return refusedForUnreachable(absent, reachable);
    }
    const ref = await this.steps.publish(request.app, request.version, request.kind);
    const skipped = unreachableRows(absent, true);
    if (reachable.length === 0) {
      await setDesired(this.resources, ref, request.deploymentId);
      const reason = hosts.length === 0 ? 'no host agent is registered; hosts converge to this release when they start' : undefined;
      return { status: 'succeeded', path: 'none', ...(reason ? { reason } : {}), workers: [], hosts: skipped };
    }
    const replies = new Replies(this.nc, this.resources.names.replySubject(request.deploymentId));
    try {
      emit(`prepare on ${reachable.length} host(s): ${reachable.join(', ')}${absent.size ? `; unreachable, allowed: ${[...absent.keys()].join(', ')}` : ''}`);
      const prepared = await this.steps.prepare(ref, request.deploymentId, reachable, replies);
      if (!prepared.ok) {
        emit(`prepare failed: ${prepared.reason}; aborting on every host`);
        await sendAll(this.resources, reachable, { type: 'abort', deploymentId: request.deploymentId });
        return { status: 'failed', path: 'none', reason: prepared.reason, workers: [], hosts: sortByHost([...prepared.hosts, ...skipped]) };
      }
      const strategies = new Map([...prepared.plans].map(([host, plan]) => [host, this.steps.choose(plan, request)]));
      emit(`apply: ${reachable.map((h) => `${h} ${strategies.get(h)?.strategy}`).join(', ')}`);
      const applying = request.canary
        ? canaryApply(this.steps, ref, { ...request, canary: request.canary }, reachable, strategies, replies, emit, phase)
        : this.steps.apply(ref, request, reachable, strategies, replies, emit);
      const result = await applying.catch((err: unknown) => {
        if (!isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) throw err;
        return this.readBacks.lost(request, reachable, err.message);
      });
      return { ...result, hosts: sortByHost([...result.hosts ?? [], ...skipped]) };
    } finally {
      replies.close();
    }
  }

  async planHosts(request: ActivationRequest, bundle: { file: string; sha256: string }): Promise<ClusterPlan> {
    const down = this.link.unavailable;
    if (down) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', down);
    try {
      const timeouts = { pingTimeoutMs: this.pingTimeoutMs, prepareTimeoutMs: this.steps.prepareTimeoutMs };
      return await dryRun(this.resources, await this.appHosts(request.app), request, bundle, timeouts);
    } catch (err) {
      if (isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) throw new DeployError('DEPLOY_ERR_CLUSTER_UNAVAILABLE', err.message);
      throw err;
    }
  }

  private alive(record: HostRecord, at = Date.now()): boolean {
    return at - record.heartbeatAt < record.heartbeatMs * (this.options.staleAfterBeats ?? 3);
  }

  /** Every registered host (a retired one has no record); remembered for when NATS is down. */
  private async records(): Promise<HostRecord[]> {
    const records = await natsStep(this.values<HostRecord>(hostKey('*')));
    this.known = records.map((r) => r.host).sort();
    return records;
  }

  /** The registered hosts that run `app`, by name. */
  private async appHosts(app: string): Promise<string[]> {
    return (await this.records()).filter((r) => runsApp(r, app)).map((r) => r.host).sort();
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
