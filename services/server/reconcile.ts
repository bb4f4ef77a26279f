import type { FastifyBaseLogger } from 'fastify';
import type { HostAgent, HostObservation } from '../../agent/messages.js';
import type { Deployment, Deployments } from './deployments.js';
import type { ReleaseStore } from './release-store.js';

/**
 * One host as the comparison sees it. `pointer` is undefined when its agent does not tell it
 * (an agent without `observe`): then only its workers count.
 */
export type Sighting = Omit<HostObservation, 'pointer'> & { pointer?: string | null };

/** Apps whose hosts may differ from the record on purpose right now (a canary in progress). */
export type DriftExemption = (app: string) => boolean;

/** What `check` found for one app. */
export interface DriftCheck {
  app: string;
  /** The service's record: the app's current release (null: none yet, nothing to converge to). */
  current: string | null;
  sightings: Sighting[];
  /** Each difference, readable (`host#2 serves 2.0.0`); empty when hosts agree with the record. */
  drift: string[];
}

/** How long one agent may take to say what it runs before it is left out of a comparison. */
export const OBSERVE_TIMEOUT_MS = 30_000;

/** The `by` of the deployments the service starts by itself. */
export const RECONCILE_BY = 'reconcile';

/**
 * The differences between the record (`current`) and what hosts run: an agent's pointer elsewhere
 * (or missing), a worker answering another version, a host with a pointer but no worker. A worker
 * that does not answer (booting, restarting) is not a difference: PM2 brings it back on the pointer.
 */
export function driftOf(current: string, sightings: Sighting[]): string[] {
  const out: string[] = [];
  for (const s of sightings) {
    if (s.pointer !== undefined && s.pointer !== current) out.push(`${s.host}: the agent's pointer is ${s.pointer ?? 'missing'}`);
    else if (s.pointer !== undefined && s.workers.length === 0) out.push(`${s.host}: no worker runs it`);
    for (const w of s.workers) if (w.version !== null && w.version !== current) out.push(`${s.host}#${w.pmId} serves ${w.version}`);
  }
  return out;
}

/** One line per host: its pointer and what each worker answered. */
export function describeSightings(sightings: Sighting[]): string {
  return sightings.map((s) => {
    const workers = s.workers.map((w) => `#${w.pmId} ${w.version ?? w.status}`).join(', ') || 'no workers';
    return `${s.host}: ${s.pointer === undefined ? '' : `pointer ${s.pointer ?? 'none'}, `}${workers}`;
  }).join('; ');
}

/**
 * Reconciliation, the one mechanism that brings hosts back to the service's record: compare the
 * app's current release, each agent's pointer and each worker's answer; any difference becomes an
 * ordinary deployment of kind `reconcile` (queued like any other, in the history with its reason,
 * on the events stream). It runs at service start (`atStart`), when an agent says hosts
 * (re)connected (`follow`), and wherever else hosts may have moved without the service: call
 * `reconcile(app, why)`.
 */
export class Reconciler {
  private readonly exemptions = new Set<DriftExemption>();
  private readonly inFlight = new Map<string, Promise<Deployment | null>>();
  private stopped = false;

  constructor(
    private readonly store: ReleaseStore,
    private readonly deployments: Deployments,
    private readonly agents: HostAgent[],
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * While `predicate(app)` holds, the app's differences are not drift (a canary runs some workers
   * on another release on purpose). Returns the undo.
   */
  exempt(predicate: DriftExemption): () => void {
    this.exemptions.add(predicate);
    return () => this.exemptions.delete(predicate);
  }

  isExempt(app: string): boolean {
    return [...this.exemptions].some((p) => p(app));
  }

  /** Every host of every agent for `app`; an agent that fails or takes too long is logged and left out. */
  async observe(app: string): Promise<Sighting[]> {
    // Agents are closed once the service stops: asking one then could start a PM2 daemon again.
    if (this.stopped) return [];
    const lists = await Promise.all(this.agents.map(async (agent): Promise<Sighting[]> => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${OBSERVE_TIMEOUT_MS} ms`)), OBSERVE_TIMEOUT_MS);
      });
      try {
        return await Promise.race([sightingsOf(agent, app), deadline]);
      } catch (err) {
        this.log.warn({ app, host: agent.host, err }, 'host agent could not say what it runs');
        return [];
      } finally {
        clearTimeout(timer);
      }
    }));
    return lists.flat();
  }

  /** The record against what hosts run, now. */
  async check(app: string): Promise<DriftCheck> {
    const { current } = await this.store.pointers(app);
    const sightings = await this.observe(app);
    return { app, current, sightings, drift: current === null || this.isExempt(app) ? [] : driftOf(current, sightings) };
  }

  /**
   * Waits for the app's deployments queued so far (hosts differ while one runs), compares, and
   * on a difference runs a `reconcile` deployment to the current release; resolves with it once it
   * finished, or null when hosts agreed (or the app is exempt, or has no current release). Calls
   * for an app already being reconciled join that one.
   */
  reconcile(app: string, why: string): Promise<Deployment | null> {
    const running = this.inFlight.get(app);
    if (running) return running;
    const job = this.run(app, why).finally(() => this.inFlight.delete(app));
    this.inFlight.set(app, job);
    return job;
  }

  /** `reconcile` for every app, in parallel (apps are independent); failures are logged. */
  async reconcileAll(why: string): Promise<Deployment[]> {
    const apps = await this.store.apps();
    const done = await Promise.all(apps.map((app) => this.reconcile(app, why).catch((err: unknown) => {
      this.log.error({ app, err }, 'reconciling failed');
      return null;
    })));
    return done.filter((d): d is Deployment => d !== null);
  }

  /**
   * Start-up: each deployment the service stopped in the middle of gets what its hosts ended on
   * (`endedOn`, and in its reason), then every app is reconciled.
   */
  async atStart(interrupted: Deployment[]): Promise<Deployment[]> {
    // With no agent attached there is nothing to look at (the deployments said so already).
    for (const d of this.agents.length > 0 ? interrupted : []) {
      if (this.stopped) return [];
      const sightings = await this.observe(d.app);
      const endedOn = sightings.map((s) => ({ host: s.host, pointer: s.pointer ?? null, workers: s.workers }));
      await this.deployments.update({ ...d, endedOn, reason: `${d.reason ?? 'interrupted'}; the hosts ended on: ${describeSightings(sightings) || 'no host answered'}` })
        .catch((err: unknown) => this.log.error({ app: d.app, deploymentId: d.id, err }, 'recording where an interrupted deployment ended failed'));
    }
    return this.reconcileAll('the service started');
  }

  /** Reconciles every app when an agent says hosts (re)connected; returns the undo. */
  follow(): () => void {
    const undos = this.agents.map((agent) => agent.onReconnect?.((hosts) => {
      void this.reconcileAll(`${hosts.join(', ')} reconnected`);
    }));
    return () => undos.forEach((undo) => undo?.());
  }

  /** No reconcile starts after this (the service is closing). */
  stop(): void {
    this.stopped = true;
  }

  private async run(app: string, why: string): Promise<Deployment | null> {
    await this.deployments.settled(app);
    if (this.stopped) return null;
    const { current, sightings, drift } = await this.check(app);
    if (current === null || drift.length === 0 || this.stopped) return null;
    const reason = `${why}: hosts differ from the current release ${current}: ${drift.join('; ')}`;
    this.log.warn({ app, version: current, drift, hosts: describeSightings(sightings) }, 'hosts out of step with the record; reconciling');
    const { done } = await this.deployments.enqueue(app, current, 'reconcile', RECONCILE_BY, { reason });
    return done;
  }
}

/** An agent's hosts: as it observes them, or by its workers alone. */
async function sightingsOf(agent: HostAgent, app: string): Promise<Sighting[]> {
  if (agent.observe) return agent.observe(app);
  const workers = await agent.workers(app);
  const hosts = [...new Set(workers.map((w) => w.host))];
  return hosts.map((host) => ({ host, workers: workers.filter((w) => w.host === host) }));
}
