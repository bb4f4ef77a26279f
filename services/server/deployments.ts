import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { ActivationRequest, ActivationResult, DeploymentPhase, HealthWindowEvent, HostAgent, HostObservation, HostResult, WorkerReport } from '../../agent/messages.js';
import type { AuditLog } from './audit-log.js';
import { withPhase, type CanaryRecord } from './canary.js';
import { DeployError, hostCode } from './errors.js';
import type { EventBus } from './events.js';
import { readJsonFile, writeJsonAtomic } from './fs-atomic.js';
import { IntentLog, IntentRefused, type Intent } from './intent-record.js';
import { KeyedQueue } from '../../agent/common/serial-queue.js';
import type { Pointers, ReleaseMeta, ReleaseStore } from './release-store.js';
import { localReleasesInUse } from './releases-in-use.js';

export type DeploymentKind = ActivationRequest['kind'];
export type DeploymentStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled-back';

/** One host's part of a deployment (agent/messages.ts `HostResult`: reverted, lagging). */
export type HostOutcome = HostResult;

/** `<dataDir>/deployments/<id>.json`. */
export interface Deployment {
  id: string;
  app: string;
  version: string;
  kind: DeploymentKind;
  status: DeploymentStatus;
  /** The token's name. */
  by: string;
  /** The app's current version when the deployment started. */
  from: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  reason?: string;
  /** A stable code for why it failed, when a host or the transport gave one (`DEPLOY_ERR_CLUSTER_UNAVAILABLE`). */
  code?: string;
  /** Per-deployment choices (`DeploymentOptions`), recorded as asked. */
  options?: DeploymentOptions;
  hosts: HostOutcome[];
  workers: WorkerReport[];
  /**
   * What each host was found running when the service looked again: for a deployment the service
   * stopped in the middle of, at the next start (reconcile.ts).
   */
  endedOn?: HostObservation[];
  /** The canary the push ran with (absent without one). */
  canary?: CanaryRecord;
  /** A canary deployment's phases as the agents report them: canary, watch, then rest or swap-back. */
  phases?: DeploymentPhase[];
  /** An `auto-rollback`'s cause: the release whose health window tripped, and the figures. */
  cause?: AutoRollbackCause;
}

/**
 * Why an `auto-rollback` deployment ran. `version` is marked bad with `reason`; `deploymentId` is
 * the deployment that made it current (its own record is left as it ended).
 */
export interface AutoRollbackCause {
  version: string;
  deploymentId: string | null;
  reason: string;
  /** The tripped workers' reports (more may arrive while the rollback waits for its turn). */
  windows: HealthWindowEvent[];
}

/** What a push, activate or rollback may ask beside the release: how hosts apply it, and the unreachable-host policy. */
export interface DeploymentOptions {
  /** `reload-all`: every host takes the checked graceful reload, whatever its dry run says. */
  strategy?: 'auto' | 'reload-all';
  /** Hosts that cannot be asked are listed `unreachable` and catch up later, instead of failing the deployment. */
  allowUnreachable?: boolean;
}

/** What `enqueue` may be given beside the release. */
export interface EnqueueExtras {
  /** Why it runs, recorded from the start (a reconcile's drift). */
  reason?: string;
  options?: DeploymentOptions;
  /**
   * The version is chosen when the deployment runs, not when it is asked for (a rollback queued
   * behind a push goes back from that push); `version` is then what it would be now.
   */
  choose?: () => Promise<string>;
  /** The canary a push runs with. */
  canary?: CanaryRecord;
  /** Why an `auto-rollback` runs. */
  cause?: AutoRollbackCause;
}

/** Deployment records kept on disk; older finished ones are deleted as new ones finish. */
export const KEEP_DEPLOYMENT_RECORDS = 1000;

/**
 * The `queued` and `running` records are written without an fsync: they lie on the path from an
 * accepted upload to the workers, where each fsync costs 1–3 ms (more when the disk is busy), and
 * the one fsync there is the intent's (intent-record.ts), which start-up recovery reads first.
 * Only the final record must survive a power loss; a killed process loses neither once written (the
 * write is atomic and in the page cache), and `recover` copes with what a power loss may leave.
 */
const INTERMEDIATE = { sync: false } as const;

export const INTERRUPTED_REASON = 'interrupted: the server stopped before it finished';

export const NO_AGENT_REASON = 'no host agent is attached: the release is now current, but no worker runs it';

/**
 * Activations, one per app at a time in the order asked (a per-app serial queue), fanned out to
 * every host agent through the `HostAgent` seam (agent/messages.ts).
 */
export class Deployments {
  private readonly queue = new KeyedQueue();
  private readonly dir: string;
  /** Record writes not yet settled, by deployment id (the last of its chain): readers wait for them. */
  private readonly writes = new Map<string, Promise<void>>();
  /** The fsync'd intent each deployment writes before any host may switch (intent-record.ts). */
  readonly intents: IntentLog;
  /** Outcomes whose records could not be written yet, by app: the app's next deployment writes them first. */
  private readonly unrecorded = new Map<string, () => Promise<void>>();
  /** Deployments announced (`queued`) and not finished, whose record may not be written yet: `get` falls back to them. */
  private readonly unwritten = new Map<string, Deployment>();
  /** Apps whose running deployment is a canary (one deployment per app runs at a time). */
  private readonly canaries = new Set<string>();

  constructor(
    private readonly store: ReleaseStore,
    private readonly agents: HostAgent[],
    private readonly bus: EventBus,
    private readonly audit: AuditLog,
    private readonly log: FastifyBaseLogger,
    private readonly keep: number,
  ) {
    this.dir = path.join(store.dataDir, 'deployments');
    this.intents = new IntentLog(store.dataDir);
  }

  /**
   * Start-up: deployments a killed server left queued or running are recorded as failed. Those two
   * records are written without an fsync (`save`), so after a power loss one may be empty or torn:
   * it is moved aside as `<id>.json.unreadable` (the listing and retention skip it) and logged.
   * Temp files of cut-short writes are removed. Returns the deployments it found interrupted.
   */
  async recover(): Promise<Deployment[]> {
    await mkdir(this.dir, { recursive: true });
    const interrupted: Deployment[] = [];
    for (const name of await readdir(this.dir)) {
      // A write the crash cut short (writeJsonAtomic's sibling temp file).
      if (name.endsWith('.tmp')) await rm(path.join(this.dir, name), { force: true });
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      const d = await readJsonFile<Deployment>(file).catch(() => null);
      if (d === undefined) continue;
      if (d === null || typeof d !== 'object' || typeof d.status !== 'string') {
        this.log.warn({ file }, 'unreadable deployment record moved aside');
        await rename(file, `${file}.unreadable`);
      } else if (d.status === 'queued' || d.status === 'running') {
        const failed: Deployment = { ...d, status: 'failed', finishedAt: new Date().toISOString(), reason: INTERRUPTED_REASON };
        await this.save(failed);
        interrupted.push(failed);
      }
    }
    return interrupted;
  }

  /**
   * Queues an activation; `done` settles when it has finished (never rejects).
   *
   * The first record is written beside the dispatch, not before it: creating a file costs
   * 0.5–2 ms of CPU here, right after the unpacker's writes, on the path from the accepted upload to
   * the workers. A deployment that must wait for another one of its app is recorded `queued` at once;
   * one that starts at once is recorded only as `running` (`run`, in the same tick). Every write of
   * the record chains after the one before, and readers wait for the chain. A process killed before
   * that first write lands leaves its intent, from which start-up recovery writes the record (one
   * left `queued` or `running` is recovered as failed). `reason` starts the record's reason (a
   * reconcile's drift).
   */
  async enqueue(app: string, version: string, kind: DeploymentKind, by: string, extras: EnqueueExtras = {}): Promise<{ deployment: Deployment; done: Promise<Deployment> }> {
    const { reason, options = {}, choose, canary, cause } = extras;
    const id = `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
    const asked = Object.keys(options).length > 0 ? { options } : {};
    const deployment: Deployment = {
      id, app, version, kind, status: 'queued', by, from: null,
      createdAt: new Date().toISOString(), startedAt: null, finishedAt: null, ...(reason ? { reason } : {}), hosts: [], workers: [], ...asked,
      ...(canary ? { canary, phases: [] } : {}), ...(cause ? { cause } : {}),
    };
    this.unwritten.set(id, deployment);
    if (this.queue.busy(app)) void this.record(deployment);
    this.emit('queued', deployment);
    const done = this.queue.run(app, async () => this.run({ ...deployment, ...(choose ? { version: await choose() } : {}) })).catch(async (err: unknown) => {
      const failed: Deployment = { ...deployment, status: 'failed', finishedAt: new Date().toISOString(), reason: (err as Error).message };
      await this.writes.get(id);
      await this.save(failed).catch(() => undefined);
      this.emit('finished', failed);
      return failed;
    }).finally(() => this.unwritten.delete(id));
    return { deployment, done };
  }

  async get(id: string): Promise<Deployment> {
    if (!/^[a-z0-9-]{1,64}$/.test(id)) throw new DeployError('DEPLOY_ERR_DEPLOYMENT_NOT_FOUND', id);
    await this.writes.get(id);
    const d = await readJsonFile<Deployment>(path.join(this.dir, `${id}.json`)) ?? this.unwritten.get(id);
    if (d === undefined) throw new DeployError('DEPLOY_ERR_DEPLOYMENT_NOT_FOUND', id);
    return { ...d };
  }

  /** Newest first (ids start with the creation time in base 36). */
  async list(app: string | undefined, limit: number): Promise<Deployment[]> {
    await Promise.all(this.writes.values());
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort().reverse();
    const out: Deployment[] = [];
    for (const name of names) {
      if (out.length >= limit) break;
      const d = await readJsonFile<Deployment>(path.join(this.dir, name));
      if (d && (app === undefined || d.app === app)) out.push(d);
    }
    return out;
  }

  /** Retention after an upload that did not activate, in the app's queue so it never races a deployment. */
  schedulePrune(app: string): void {
    void this.queue.run(app, () => this.prune(app));
  }

  /** Publishes an event about deployment `d` (an auto-rollback's health-window trip). */
  announce(type: 'health-window', d: Deployment, health: HealthWindowEvent): void {
    this.bus.publish(type, { ...d }, undefined, health);
    this.log.warn({ app: d.app, version: health.version, deploymentId: d.id, event: type, host: health.host, pmId: health.pmId, report: health.report }, 'health window tripped');
  }

  /**
   * Whether a canary deployment of `app` is running: some of its workers or hosts serve another
   * release than the record's current one on purpose, which is no drift to bring back.
   */
  canaryRunning(app: string): boolean {
    return this.canaries.has(app);
  }

  /** Resolves once every queued deployment has finished. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Whether a deployment of `app` is queued or running. */
  busy(app: string): boolean {
    return this.queue.busy(app);
  }

  /** Resolves once every deployment of `app` queued so far has finished. */
  async settled(app: string): Promise<void> {
    await this.queue.run(app, () => undefined);
  }

  /** Rewrites a finished deployment's record (durably), e.g. with what its hosts ended on. */
  async update(d: Deployment): Promise<void> {
    await this.writes.get(d.id);
    await this.save(d);
  }

  private async run(d: Deployment): Promise<Deployment> {
    this.unwritten.set(d.id, d);
    const skip = d.cause ? await this.autoRollbackTarget(d, d.cause) : undefined;
    if (skip !== undefined) return this.skipped(d, skip);
    let { release, pointers } = this.store.dispatchView(d.app, d.version);
    // A reconcile brings hosts to the record as it is when it runs: a deployment before it may have moved it.
    if (d.kind === 'reconcile' && pointers.current !== null && pointers.current !== d.version) {
      ({ release, pointers } = this.store.dispatchView(d.app, (d.version = pointers.current)));
    }
    Object.assign(d, { status: 'running', startedAt: new Date().toISOString(), from: pointers.current });
    // Written beside the intent while the agents work, not before (it is on the path to the workers): a
    // crash leaves the record `queued` or `running` (or none) with the intent; start-up recovery finishes it.
    const running = this.record(d);
    this.emit('started', d);
    const intent = intentOf(d, release, pointers);
    try {
      await this.recordLeftover(d.app);
      await this.intents.begin(intent);
    } catch (err) {
      if (!(err instanceof IntentRefused)) throw err;
      await running;
      return this.refuse(d, release, err);
    }
    try {
      await this.activate(d, release.manifest, pointers);
    } finally {
      await running;
    }
    d.finishedAt = new Date().toISOString();
    if (d.cause) await this.markTripped(d, d.cause);
    await this.conclude(d, release, pointers, intent);
    this.emit('finished', d);
    if (d.status === 'succeeded') await this.prune(d.app);
    await this.pruneRecords();
    return d;
  }

  /**
   * Makes the outcome visible: first into the intent (in place, needing no free space), then the
   * pointers, the record and the audit line. When those cannot be written even with the reserve,
   * the answer says so and the intent keeps the outcome for the next start to write.
   */
  private async conclude(d: Deployment, release: ReleaseMeta, pointers: Pointers, intent: Intent): Promise<void> {
    const fields = { app: d.app, version: d.version, deploymentId: d.id };
    // The records are written even when the intent could not take the outcome: they are what readers see.
    await this.intents.decide(intent, { status: d.status, ...(d.reason ? { reason: d.reason } : {}), finishedAt: d.finishedAt!,
      hosts: d.hosts.map((h) => ({ host: h.host, status: h.status, path: h.path })) })
      .catch((err: unknown) => this.log.error({ ...fields, err }, 'writing the outcome into the intent record failed'));
    const persist = (): Promise<void> => this.intents.settle(d.app, () => this.persist(d, { sha256: release.sha256 }, pointers));
    try {
      await persist();
    } catch (err) {
      this.unrecorded.set(d.app, persist);
      this.log.error({ ...fields, err }, 'recording the deployment\'s outcome failed');
      d.reason = `${d.reason ? `${d.reason}; ` : ''}its outcome could not be recorded on disk (${(err as Error).message}); the service's intent record holds it and the next start writes it`;
    }
  }

  /**
   * An earlier outcome of the app that could not be recorded is written before anything else: its
   * intent must not be overwritten. Throws `IntentRefused` while it still cannot be.
   */
  private async recordLeftover(app: string): Promise<void> {
    const persist = this.unrecorded.get(app);
    if (!persist) return;
    try {
      await persist();
      this.unrecorded.delete(app);
    } catch (err) {
      throw new IntentRefused(err);
    }
  }

  /** The writes that make an outcome visible; each can be repeated (the retry after a full disk, start-up recovery). */
  async persist(d: Deployment, release: Pick<ReleaseMeta, 'sha256'>, pointers: Pick<Pointers, 'current' | 'previous'>, { audit = true } = {}): Promise<void> {
    if (d.status === 'succeeded') {
      const newPrevious = pointers.current !== d.version ? pointers.current : pointers.previous;
      await this.store.withAppLock(d.app, () => this.store.setPointers(d.app, d.version, newPrevious));
      await this.store.markLive(d.app, d.version);
    }
    // A reconcile that cannot bring hosts back says nothing about its release, which was good before.
    if (d.status === 'rolled-back' && d.kind !== 'reconcile') await this.store.markBad(d.app, d.version, d.reason ?? 'rolled back');
    await this.save(d);
    if (audit) await this.audit.append({ who: d.by, what: d.kind, app: d.app, version: d.version, sha256: release.sha256, deploymentId: d.id, outcome: d.status, ...(d.reason ? { reason: d.reason } : {}) });
  }

  /** The intent could not be written: no host was asked anything. Recorded as far as the disk allows. */
  private async refuse(d: Deployment, release: ReleaseMeta, err: IntentRefused): Promise<Deployment> {
    Object.assign(d, {
      status: 'failed', finishedAt: new Date().toISOString(), reason: err.message,
      hosts: this.agents.map((agent) => ({ host: agent.host, status: 'failed', path: 'none', reason: 'not asked: the intent record could not be written' })),
    });
    this.log.error({ app: d.app, version: d.version, deploymentId: d.id, err: err.cause }, 'deployment refused: its intent could not be recorded');
    // The reserve, if the disk left one, is for exactly this: recording what happened.
    await this.intents.release();
    await this.save(d).catch((e: unknown) => this.log.error({ deploymentId: d.id, err: e }, 'writing the deployment record failed'));
    await this.audit.append({ who: d.by, what: d.kind, app: d.app, version: d.version, sha256: release.sha256, deploymentId: d.id, outcome: d.status, reason: err.message })
      .catch((e: unknown) => this.log.error({ deploymentId: d.id, err: e }, 'writing the audit line failed'));
    // An earlier outcome still waiting to be recorded keeps its intent.
    if (!this.unrecorded.has(d.app)) await this.intents.clear(d.app);
    this.emit('finished', d);
    return d;
  }

  /**
   * An auto-rollback goes to the release before the tripped one, decided when its turn comes (the
   * push that made the tripped release current may still have been running when the trip came).
   * Returns why it does not run: the tripped release is not current any more, or no good one came before it.
   */
  private async autoRollbackTarget(d: Deployment, cause: AutoRollbackCause): Promise<string | undefined> {
    const pointers = await this.store.pointers(d.app);
    if (pointers.current !== cause.version) return `${cause.version} is not current (${pointers.current ?? 'none'} is): nothing to roll back`;
    // The previous release, unless it is marked bad itself: then the newest older one that is not.
    const previous = pointers.previous !== null && pointers.previous !== cause.version ? await this.store.get(d.app, pointers.previous) : undefined;
    const target = previous && !previous.bad ? previous.version : await rollbackTarget(this.store, d.app).catch(() => undefined);
    if (target === undefined || target === cause.version) {
      await this.markTripped(d, cause);
      return `no release before ${cause.version} to go back to; it stays current, marked bad`;
    }
    d.version = target;
    return undefined;
  }

  /** The tripped release is marked bad, the reason saying why (`hotdeploy releases` shows it). */
  private async markTripped(d: Deployment, cause: AutoRollbackCause): Promise<void> {
    const reason = `${cause.reason} (auto-rollback ${d.id})`;
    await this.store.markBad(d.app, cause.version, reason);
    await this.audit.append({ who: d.by, what: 'mark-bad', app: d.app, version: cause.version, deploymentId: d.id, outcome: 'bad', reason });
  }

  /** A deployment that does not run (nothing to do when its turn came) is recorded as failed, with why. */
  private async skipped(d: Deployment, reason: string): Promise<Deployment> {
    const now = new Date().toISOString();
    Object.assign(d, { status: 'failed', startedAt: now, finishedAt: now, reason });
    // After its `queued` record, if one is being written.
    await this.writes.get(d.id);
    await this.save(d);
    await this.audit.append({ who: d.by, what: d.kind, app: d.app, version: d.version, deploymentId: d.id, outcome: d.status, reason });
    this.emit('finished', d);
    return d;
  }

  /** Fans the activation out to every agent and settles the outcome: status, reason, hosts, workers, pointers. */
  private async activate(d: Deployment, manifest: ActivationRequest['manifest'], pointers: Pointers): Promise<void> {
    const previous = pointers.current !== null && pointers.current !== d.version
      ? { version: pointers.current, releaseDir: this.store.releaseDir(d.app, pointers.current) } : null;
    const request: ActivationRequest = {
      deploymentId: d.id, app: d.app, version: d.version, releaseDir: this.store.releaseDir(d.app, d.version),
      manifest, previous, kind: d.kind, ...(d.canary ? { canary: { size: d.canary.size, watchMs: d.canary.watchMs } } : {}),
      ...(d.options?.strategy === 'reload-all' ? { strategy: 'reload' } : {}),
      ...(d.options?.allowUnreachable ? { allowUnreachable: true } : {}),
    };
    if (d.canary) this.canaries.add(d.app);
    const results = await Promise.all(this.agents.map((agent) => this.activateOn(agent, request, d)))
      .finally(() => this.canaries.delete(d.app));
    // The agents' final account, in their order, wins over the events seen on the way (an agent that died keeps those).
    const reported = results.flatMap(({ result }) => result.phases ?? []);
    if (d.phases) d.phases = reported.reduce(withPhase, d.phases.filter((p) => !reported.some((r) => r.name === p.name && r.host === p.host)));
    // An agent for many hosts (NATS) reports each host; its own status is the verdict.
    d.hosts = results.flatMap(({ host, result }) => (result.hosts ?? [{ host, status: result.status, path: result.path, ...(result.reason ? { reason: result.reason } : {}), ...(result.code ? { code: result.code } : {}) }])
      .map((h) => (h.code ? { ...h, code: hostCode(h.code) } : h)));
    d.workers = results.flatMap(({ result }) => result.workers);

    const bad = results.filter(({ result }) => result.status !== 'succeeded').map(({ host, result }) => ({ host, status: result.status, reason: result.reason }));
    if (this.agents.length === 0) {
      d.status = 'succeeded';
      d.reason = NO_AGENT_REASON;
    } else if (bad.length === 0) {
      d.status = 'succeeded';
    } else {
      d.status = bad.some((h) => h.status === 'rolled-back') ? 'rolled-back' : 'failed';
      const why = bad.map((h) => `${h.host}: ${h.reason ?? h.status}`).join('; ');
      // A reconcile's reason is the drift it was started for; what went wrong follows it.
      d.reason = d.kind === 'reconcile' && d.reason ? `${d.reason}; ${why}` : why;
      const code = results.find(({ result }) => result.status !== 'succeeded' && result.code)?.result.code;
      if (code) d.code = hostCode(code);
      if (previous) await this.revert(d, request, previous, results);
    }
  }

  private async activateOn(agent: HostAgent, request: ActivationRequest, d: Deployment): Promise<{ host: string; result: ActivationResult }> {
    try {
      const result = await agent.activate(request, (event) => {
        // A canary's phases show in the record while it runs (the watch can last minutes).
        if (event.phase && d.phases) {
          d.phases = withPhase(d.phases, event.phase);
          void this.record(d);
        }
        this.emit('agent', d, event);
      });
      return { host: agent.host, result };
    } catch (err) {
      return { host: agent.host, result: { status: 'failed', path: 'none', reason: (err as Error).message, workers: [] } };
    }
  }

  /**
   * One host failing leaves the others on the new release; bring those back to the previous one,
   * so the app's hosts agree with the pointers, which stay on the previous release.
   */
  private async revert(d: Deployment, request: ActivationRequest, previous: { version: string; releaseDir: string },
    results: { host: string; result: ActivationResult }[]): Promise<void> {
    const meta = await this.store.get(d.app, previous.version);
    if (!meta) return;
    const back: ActivationRequest = { ...request, version: previous.version, releaseDir: previous.releaseDir, manifest: meta.manifest, previous: null, kind: 'rollback' };
    for (const agent of this.agents) {
      const outcome = results.find((r) => r.host === agent.host);
      if (outcome?.result.status !== 'succeeded') continue;
      const { result } = await this.activateOn(agent, back, d);
      d.hosts.push({ host: agent.host, status: result.status, path: result.path, reverted: true, ...(result.reason ? { reason: result.reason } : {}) });
      d.workers.push(...result.workers);
    }
  }

  private async prune(app: string): Promise<void> {
    try {
      const removed = await this.store.prune(app, this.keep, () => localReleasesInUse(this.agents, app));
      for (const version of removed) {
        this.log.info({ app, version }, 'release pruned');
        await this.audit.append({ who: 'retention', what: 'prune', app, version, outcome: 'removed' });
      }
      if (removed.length > 0) for (const agent of this.agents) await agent.pruned?.(app);
    } catch (err) {
      this.log.warn({ app, err }, 'pruning releases failed');
    }
  }

  /** Ids start with the creation time, so name order is age order; unfinished records are kept. */
  private async pruneRecords(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names.slice(0, Math.max(0, names.length - KEEP_DEPLOYMENT_RECORDS))) {
      const d = await readJsonFile<Deployment>(path.join(this.dir, name)).catch(() => undefined);
      if (d?.finishedAt) await rm(path.join(this.dir, name), { force: true });
    }
  }

  private emit(type: 'queued' | 'started' | 'agent' | 'finished', d: Deployment, agent?: Parameters<EventBus['publish']>[2]): void {
    this.bus.publish(type, { ...d }, agent);
    this.log.info({ app: d.app, version: d.version, deploymentId: d.id, event: type, status: d.status, ...(agent ? { message: agent.message } : {}) }, `deployment ${type}`);
  }

  /** An intermediate write of the record (not fsync'd), after the ones before it; a failure is logged. */
  private record(d: Deployment): Promise<void> {
    const snapshot = { ...d };
    const write = (this.writes.get(d.id) ?? Promise.resolve()).then(() => this.save(snapshot, INTERMEDIATE)).catch((err: unknown) => {
      this.log.warn({ app: d.app, version: d.version, deploymentId: d.id, status: d.status, err }, 'writing the deployment record failed');
    });
    this.writes.set(d.id, write);
    void write.then(() => {
      if (this.writes.get(d.id) === write) this.writes.delete(d.id);
    });
    return write;
  }

  /** Atomic always; durable (fsync'd) unless `INTERMEDIATE`. */
  private async save(d: Deployment, options?: typeof INTERMEDIATE): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${d.id}.json`), d, undefined, options);
  }
}

/** What a deployment intends, before any host switches. */
function intentOf(d: Deployment, release: ReleaseMeta, pointers: Pointers): Intent {
  return {
    deploymentId: d.id, app: d.app, version: d.version, kind: d.kind, by: d.by, sha256: release.sha256, createdAt: d.createdAt, startedAt: d.startedAt!,
    before: { current: pointers.current, previous: pointers.previous },
    after: { current: d.version, previous: pointers.current !== d.version ? pointers.current : pointers.previous },
  };
}

/**
 * `rollback` without `to`: walking back from the current release (by creation), the first that went
 * live (a deployment of it succeeded) and is not marked bad. Releases that never served (a failed
 * deployment, `--no-activate` and never activated) are skipped, so a rollback cannot land on code
 * that never ran, and repeated rollbacks go further back. Naming any stored release with `to` is
 * allowed (the operator decided).
 */
export async function rollbackTarget(store: ReleaseStore, app: string, to?: string): Promise<string> {
  if (to !== undefined) return (await store.require(app, to)).version;
  const { current } = await store.pointers(app);
  const releases = await store.list(app);
  if (releases.length === 0) throw new DeployError('DEPLOY_ERR_APP_NOT_FOUND', app);
  const index = releases.findIndex((r) => r.version === current);
  const older = index === -1 ? [] : releases.slice(index + 1);
  const target = older.find((r) => !r.bad && r.live !== false);
  if (!target) throw new DeployError('DEPLOY_ERR_NO_ROLLBACK_TARGET', app);
  return target.version;
}
