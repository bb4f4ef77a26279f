import type { ActivationRequest, ActivationResult, HostPlan, PlanningAgent, WorkerReport, WorkerState } from '../../agent/messages.js';
import { hostApp, type HostedApp } from '../../agent/runtime/host-app.js';

export interface InProcessHost extends PlanningAgent {
  /** The version each app serves on this host. */
  served(app: string): string | undefined;
  /** The app as hosted now (its handler serves whichever version is current). */
  hosted(app: string): HostedApp | undefined;
  /** Holds the next activations until released (a host that vanishes mid-apply). */
  hold(): () => void;
}

/**
 * A host without PM2: its one "worker" is the real worker runtime (`hostApp`) inside this process,
 * so plan and update are the real dry run and the real hot swap; a reload is close + host again.
 * Lightweight enough to run many hosts in one test process (protocol tests, fan-out bench).
 */
export function inProcessHost(host: string): InProcessHost {
  const apps = new Map<string, { hosted: HostedApp; version: string }>();
  let gate: Promise<void> | undefined;

  const report = (version: string | null, outcome: WorkerReport['outcome'], durationMs: number, reason?: string): WorkerReport =>
    ({ host, pmId: 0, pid: process.pid, version, outcome, durationMs, ...(reason ? { reason } : {}) });

  async function plan(request: ActivationRequest): Promise<HostPlan> {
    const running = apps.get(request.app);
    if (!running) return { host, path: 'start', workers: [] };
    const update = await running.hosted.plan(request.releaseDir);
    const hot = update.outcome === 'hot' || update.outcome === 'unchanged';
    const reason = hot ? undefined : `worker 0: ${update.outcome}${update.chain?.length ? `: ${update.chain.join(' → ')}` : ''}`;
    return { host, path: hot ? 'hot' : 'reload', ...(reason ? { reason } : {}), workers: [{ pmId: 0, pid: process.pid, hot, update, ...(reason ? { reason } : {}) }] };
  }

  async function activate(request: ActivationRequest): Promise<ActivationResult> {
    await gate;
    const t0 = Date.now();
    const running = apps.get(request.app);
    const start = async (path: ActivationResult['path'], reason?: string): Promise<ActivationResult> => {
      const hosted = await hostApp({ name: `${host}/${request.app}`, dir: request.releaseDir });
      apps.set(request.app, { hosted, version: request.version });
      return { status: 'succeeded', path, ...(reason ? { reason } : {}), workers: [report(request.version, path === 'start' ? 'started' : 'reloaded', Date.now() - t0, reason)] };
    };
    if (!running) return start('start');
    if (request.strategy !== 'reload') {
      const update = await running.hosted.update(request.releaseDir);
      if (update.outcome === 'hot' || update.outcome === 'unchanged') {
        running.version = request.version;
        return { status: 'succeeded', path: 'hot', workers: [{ ...report(request.version, update.outcome, Date.now() - t0), update }] };
      }
    }
    const before = { dir: running.hosted.dir, version: running.version };
    await running.hosted.close();
    apps.delete(request.app);
    try {
      return await start('reload', request.strategy === 'reload' ? 'a reload was asked for' : 'the update was not hot');
    } catch (err) {
      // The release does not start: host the previous one again (the PM2 agent's rollback, in small).
      apps.set(request.app, { hosted: await hostApp({ name: `${host}/${request.app}`, dir: before.dir }), version: before.version });
      const reason = `${request.version} did not start: ${(err as Error).message}`;
      return { status: 'rolled-back', path: 'reload', reason, workers: [report(before.version, 'rolled-back', Date.now() - t0, reason)] };
    }
  }

  async function workers(app: string): Promise<WorkerState[]> {
    const running = apps.get(app);
    return running ? [{ host, pmId: 0, pid: process.pid, version: running.version, status: 'online', releases: running.hosted.releasesInUse() }] : [];
  }

  async function close(): Promise<void> {
    for (const { hosted } of apps.values()) await hosted.close().catch(() => undefined);
    apps.clear();
  }

  return {
    host, plan, activate, workers, close,
    served: (app) => apps.get(app)?.version,
    hosted: (app) => apps.get(app)?.hosted,
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((resolve) => { release = resolve; });
      return () => { gate = undefined; release(); };
    },
  };
}
