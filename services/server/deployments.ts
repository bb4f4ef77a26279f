import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ActivationRequest, ActivationResult, HealthWindowEvent, HostAgent } from '../../agent/messages.js';
import type { AuditLog } from './audit-log.js';
import { autoRollbackTarget, markTripped } from './auto-rollback.js';
import { withPhase, type CanaryRecord } from './canary.js';
import { DeploymentOutcomes } from './deployment-outcomes.js';
import { DeploymentRecords, type AutoRollbackCause, type Deployment, type DeploymentKind, type DeploymentOptions } from './deployment-records.js';
import { hostCode } from './errors.js';
import type { EventBus } from './events.js';
import { IntentRefused, type Intent, type IntentLog } from './intent-record.js';
import { KeyedQueue } from '../../agent/common/serial-queue.js';
import type { Pointers, ReleaseMeta, ReleaseStore } from './release-store.js';
import { localReleasesInUse } from './releases-in-use.js';

// The record's types live beside its store, `rollbackTarget` beside the auto-rollback; other modules import them from here.
export {
  INTERRUPTED_REASON, KEEP_DEPLOYMENT_RECORDS,
  type AutoRollbackCause, type Deployment, type DeploymentKind, type DeploymentOptions, type DeploymentStatus, type HostOutcome,
} from './deployment-records.js';
export { rollbackTarget } from './auto-rollback.js';

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

export const NO_AGENT_REASON = 'no host agent is attached: the release is now current, but no worker runs it';

/**
 * Activations, one per app at a time in the order asked (a per-app serial queue), fanned out to
 * every host agent through the `HostAgent` seam (agent/messages.ts).
 */
export class Deployments {
  private readonly queue = new KeyedQueue();
  private readonly records: DeploymentRecords;
  private readonly outcomes: DeploymentOutcomes;
  /** The fsync'd intents (`DeploymentOutcomes.intents`), which start-up recovery finishes (recovery.ts). */
  readonly intents: IntentLog;
  /** Apps whose running deployment is a canary (one deployment per app runs at a time). */
  private readonly canaries = new Set<string>();
  /** Retention running in the app's queue, by app: listings of its releases wait for it (`retained`). */
  private readonly retaining = new Map<string, Promise<void>>();

  constructor(
    private readonly store: ReleaseStore,
    private readonly agents: HostAgent[],
    private readonly bus: EventBus,
    private readonly audit: AuditLog,
    private readonly log: FastifyBaseLogger,
    private readonly keep: number,
  ) {
    this.records = new DeploymentRecords(store.dataDir, log);
    this.outcomes = new DeploymentOutcomes(store, this.records, audit, log);
    this.intents = this.outcomes.intents;
  }

  /** Start-up: deployments a killed server left queued or running are recorded as failed (`DeploymentRecords.recover`). */
  recover(): Promise<Deployment[]> {
    return this.records.recover();
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
   *
   * `done` settles once the outcome is recorded and the `finished` event sent: retention and the
   * records' own retention follow in the same turn of the app's queue, after the answer, so the
   * app's next deployment still starts only once they are done, and its listings wait for them (`retained`).
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
    this.records.track(deployment);
    if (this.queue.busy(app)) void this.records.record(deployment);
    this.emit('queued', deployment);
    let answer!: (d: Deployment) => void;
    const answered = new Promise<Deployment>((resolve) => (answer = resolve));
    const ran = this.queue.run(app, async () => this.run({ ...deployment, ...(choose ? { version: await choose() } : {}) }, answer)).catch(async (err: unknown) => {
      const failed: Deployment = { ...deployment, status: 'failed', finishedAt: new Date().toISOString(), reason: (err as Error).message };
      await this.records.update(failed).catch(() => undefined);
      this.emit('finished', failed);
      return failed;
    }).finally(() => this.records.untrack(id));
    // A deployment that ended before its outcome was answered (it failed on the way) answers now.
    void ran.then(answer);
    return { deployment, done: answered };
  }

  get(id: string): Promise<Deployment> {
    return this.records.get(id);
  }

  /** Newest first. */
  list(app: string | undefined, limit: number): Promise<Deployment[]> {
    return this.records.list(app, limit);
  }

  /** Retention after an upload that did not activate, in the app's queue so it never races a deployment. */
  schedulePrune(app: string): void {
    void this.queue.run(app, () => this.retain(app, () => this.prune(app)));
  }

  /**
   * Resolves once the retention running for `app` (after a deployment's answer, or after an upload
   * that did not activate) is done: a listing of its releases asked after an answer sees what
   * retention left, as it did when the answer waited for it. Retention still queued behind a
   * deployment is not waited for.
   */
  async retained(app: string): Promise<void> {
    await this.retaining.get(app);
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
  update(d: Deployment): Promise<void> {
    return this.records.update(d);
  }

  /**
   * Runs `d`; `answer` is called with it once its outcome is recorded and announced, before
   * retention, which follows in the same job: the app's queue moves on only after it.
   */
  private async run(d: Deployment, answer: (d: Deployment) => void): Promise<Deployment> {
    this.records.track(d);
    const skip = d.cause ? await autoRollbackTarget(this.store, this.audit, d, d.cause) : undefined;
    if (skip !== undefined) return this.skipped(d, skip);
    let { release, pointers } = this.store.dispatchView(d.app, d.version);
    // A reconcile brings hosts to the record as it is when it runs: a deployment before it may have moved it.
    if (d.kind === 'reconcile' && pointers.current !== null && pointers.current !== d.version) {
      ({ release, pointers } = this.store.dispatchView(d.app, (d.version = pointers.current)));
    }
    Object.assign(d, { status: 'running', startedAt: new Date().toISOString(), from: pointers.current });
    // Written beside the intent while the agents work, not before (it is on the path to the workers): a
    // crash leaves the record `queued` or `running` (or none) with the intent; start-up recovery finishes it.
    const running = this.records.record(d);
    this.emit('started', d);
    let intent: Intent;
    try {
      intent = await this.outcomes.begin(d, release, pointers);
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
    if (d.cause) await markTripped(this.store, this.audit, d, d.cause);
    await this.outcomes.conclude(d, release, pointers, intent);
    this.emit('finished', d);
    answer(d);
    // After the answer: a crash here leaves more releases than `keep`, each whole, which the app's
    // next deployment prunes; the outcome is already on disk.
    await this.retain(d.app, async () => {
      if (d.status === 'succeeded') await this.prune(d.app);
      await this.records.prune().catch((err: unknown) => this.log.warn({ err }, 'pruning deployment records failed'));
    });
    return d;
  }

  /** Runs `job` (retention, inside the app's queue) as the app's `retaining` until it ends. */
  private async retain(app: string, job: () => Promise<void>): Promise<void> {
    const running = job();
    this.retaining.set(app, running);
    try {
      await running;
    } finally {
      if (this.retaining.get(app) === running) this.retaining.delete(app);
    }
  }

  /** The writes that make an outcome visible (`DeploymentOutcomes.persist`); start-up recovery repeats them. */
  persist(d: Deployment, release: Pick<ReleaseMeta, 'sha256'>, pointers: Pick<Pointers, 'current' | 'previous'>, options: { audit?: boolean } = {}): Promise<void> {
    return this.outcomes.persist(d, release, pointers, options);
  }

  /** The intent could not be written: no host was asked anything. Recorded as far as the disk allows. */
  private async refuse(d: Deployment, release: ReleaseMeta, err: IntentRefused): Promise<Deployment> {
    Object.assign(d, {
      status: 'failed', finishedAt: new Date().toISOString(), reason: err.message,
      hosts: this.agents.map((agent) => ({ host: agent.host, status: 'failed', path: 'none', reason: 'not asked: the intent record could not be written' })),
    });
    this.log.error({ app: d.app, version: d.version, deploymentId: d.id, err: err.cause }, 'deployment refused: its intent could not be recorded');
    await this.outcomes.refused(d, release, err);
    this.emit('finished', d);
    return d;
  }

  /** A deployment that does not run (nothing to do when its turn came) is recorded as failed, with why. */
  private async skipped(d: Deployment, reason: string): Promise<Deployment> {
    const now = new Date().toISOString();
    Object.assign(d, { status: 'failed', startedAt: now, finishedAt: now, reason });
    // After its `queued` record, if one is being written.
    await this.records.update(d);
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
          void this.records.record(d);
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

  private emit(type: 'queued' | 'started' | 'agent' | 'finished', d: Deployment, agent?: Parameters<EventBus['publish']>[2]): void {
    this.bus.publish(type, { ...d }, agent);
    this.log.info({ app: d.app, version: d.version, deploymentId: d.id, event: type, status: d.status, ...(agent ? { message: agent.message } : {}) }, `deployment ${type}`);
  }
}
