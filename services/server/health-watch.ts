import type { FastifyBaseLogger } from 'fastify';
import { isWatchedAgent } from '../../agent/messages.js';
import type { HealthWindowEvent, HostAgent } from '../../agent/messages.js';
import type { AutoRollbackCause, Deployment, Deployments } from './deployments.js';
import type { ReleaseStore } from './release-store.js';

/** Who an auto-rollback is by, in its record and the audit log. */
export const HEALTH_WINDOW_ACTOR = 'health-window';

/**
 * Listens to the host agents' health-window reports (each worker watches its answers for
 * `health.windowMs` after a hot swap). A tripped window of the app's current release queues one
 * `auto-rollback` deployment back to the release before it, which marks the tripped release bad;
 * trips of other workers that come while it waits join its figures. Each trip goes out on the
 * event stream as a `health-window` event of that deployment.
 */
export class HealthWatch {
  private readonly undo: (() => void)[] = [];
  /**
   * Trips being handled, by `app@version` of the tripped release: reserved at the first trip (before
   * anything is awaited, so trips of two workers arriving together queue one rollback), with the
   * rollback's deployment once it is queued, until it finished.
   */
  private readonly open = new Map<string, { deployment?: Deployment; cause: AutoRollbackCause }>();

  constructor(
    private readonly agents: HostAgent[],
    private readonly store: ReleaseStore,
    private readonly deployments: Deployments,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    for (const agent of this.agents) {
      if (isWatchedAgent(agent)) this.undo.push(agent.onHealthWindow((event) => void this.onWindow(event).catch((err: unknown) => {
        this.log.error({ app: event.app, version: event.version, err }, 'handling a health-window report failed');
      })));
    }
  }

  close(): void {
    for (const undo of this.undo.splice(0)) undo();
  }

  private async onWindow(event: HealthWindowEvent): Promise<void> {
    const { app, version, report } = event;
    // A canary worker's window is its canary's to judge: the canary swaps it back and its push fails.
    if (!report.tripped || event.canary) return;
    const key = `${app}@${version}`;
    const open = this.open.get(key);
    if (open) {
      open.cause.windows.push(event);
      if (open.deployment) this.deployments.announce('health-window', open.deployment, event);
      return;
    }
    const entry: { deployment?: Deployment; cause: AutoRollbackCause } = { cause: { version, deploymentId: null, reason: describeTrip(event), windows: [event] } };
    this.open.set(key, entry);
    try {
      const pointers = await this.store.pointers(app);
      // A trip can come before the push that swapped the release in has finished: that push is in the
      // app's queue, and the rollback queued behind it checks again when its turn comes.
      if (pointers.current !== version && !this.deployments.busy(app)) {
        this.open.delete(key);
        this.log.info({ app, version, current: pointers.current }, 'health window tripped on a release that is not current; ignored');
        return;
      }
      entry.cause.deploymentId = await this.swappedInBy(app, version);
      // The target is decided when the rollback runs; the guess here names it in the queued event.
      const guess = pointers.current === version ? pointers.previous ?? version : pointers.current ?? version;
      const { deployment, done } = await this.deployments.enqueue(app, guess, 'auto-rollback', HEALTH_WINDOW_ACTOR, { cause: entry.cause });
      entry.deployment = deployment;
      for (const window of entry.cause.windows) this.deployments.announce('health-window', deployment, window);
      void done.finally(() => this.open.delete(key));
    } catch (err) {
      this.open.delete(key);
      throw err;
    }
  }

  /** The newest deployment that made `version` current (not an auto-rollback). */
  private async swappedInBy(app: string, version: string): Promise<string | null> {
    const recent = await this.deployments.list(app, 50);
    return recent.find((d) => d.version === version && d.kind !== 'auto-rollback' && (d.status === 'succeeded' || d.status === 'running'))?.id ?? null;
  }
}

/** A trip in one line: which worker, the figures, the first error. */
export function describeTrip(event: HealthWindowEvent): string {
  const { report } = event;
  return `health window tripped on ${event.host} worker ${event.pmId} after the hot swap to ${event.version}: `
    + `${report.errors5xx} 5xx answer(s) and ${report.exceptions} uncaught exception(s) in ${report.requests} answer(s) within ${report.elapsedMs} ms`
    + `${report.sample ? ` (first: ${report.sample})` : ''}`;
}
