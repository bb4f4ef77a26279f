import type { WorkerStats } from '../messages.js';
import type { WorkerChannel } from './channel.js';
import type { Pm2Process } from './client.js';
import type { ProcessTable } from './process-table.js';

export interface LiveWorker {
  pmId: number;
  pid: number | null;
  status: string;
  version: string | null;
  stats: WorkerStats;
  /** Release directories its live code came from; absent when it did not answer. */
  releases?: string[];
}

export interface GateOptions {
  app: string;
  version: string;
  instances: number;
  deadlineMs: number;
  /** How long every worker must stay up, unrestarted, on the version (catches crash loops). */
  settleMs: number;
  /** Only boot failures reported after this instant count (epoch ms). */
  since: number;
  /** Processes that do not count (the ones an adoption is replacing). */
  exclude?: readonly number[];
}

export type GateResult = { ok: true; workers: LiveWorker[] } | { ok: false; reason: string; workers: LiveWorker[] };

/** Asks every online worker of `app` which version it serves; silent ones report null. */
export async function liveWorkers(processes: ProcessTable, channel: WorkerChannel, app: string, timeoutMs = 1_000, exclude: readonly number[] = []): Promise<LiveWorker[]> {
  const procs = (await processes.fresh(app)).filter((p) => !exclude.includes(p.pmId));
  return Promise.all(procs.map(async (p) => {
    const stats: WorkerStats = { restarts: p.restarts, ...(p.memory === undefined ? {} : { memoryBytes: p.memory }), ...(p.cpu === undefined ? {} : { cpuPercent: p.cpu }) };
    if (p.status !== 'online') return { pmId: p.pmId, pid: p.pid, status: p.status, version: null, stats };
    const pong = await channel.request(p.pmId, { kind: 'ping' }, timeoutMs, p.pid).catch(() => undefined);
    const delay = pong?.kind === 'pong' ? pong.loopDelay : undefined;
    if (delay) Object.assign(stats, { loopDelayP99Ms: delay.p99Ms, loopDelayMaxMs: delay.maxMs });
    const releases = pong?.kind === 'pong' ? pong.releases : undefined;
    return { pmId: p.pmId, pid: pong?.pid ?? p.pid, status: p.status, version: pong?.version ?? null, stats, ...(releases ? { releases } : {}) };
  }));
}

/**
 * The health gate after a start or reload: every worker online, serving `version`, and still the same
 * process (same pid, no restart) a settle window later. Fails fast when a worker reports it could not
 * boot the version, or PM2 gave up on it (`errored`).
 */
export async function healthGate(processes: ProcessTable, channel: WorkerChannel, options: GateOptions): Promise<GateResult> {
  const deadline = Date.now() + options.deadlineMs;
  const exclude = options.exclude ?? [];
  const own = async (): Promise<Pm2Process[]> => (await processes.fresh(options.app)).filter((p) => !exclude.includes(p.pmId));
  let workers: LiveWorker[] = [];
  while (Date.now() < deadline) {
    const bootError = channel.bootFailure(options.app, options.version, options.since);
    if (bootError) return { ok: false, reason: `a worker could not start ${options.version}: ${bootError}`, workers };
    const procs = await own();
    if (procs.some((p) => p.status === 'errored')) {
      return { ok: false, reason: `PM2 marked a worker errored (crash loop) on ${options.version}`, workers };
    }
    workers = await liveWorkers(processes, channel, options.app, 1_000, exclude);
    if (workers.length >= options.instances && workers.every((w) => w.status === 'online' && w.version === options.version)) {
      await pause(options.settleMs);
      if (same(procs, await own())) return { ok: true, workers };
    } else {
      await pause(150);
    }
  }
  const bootError = channel.bootFailure(options.app, options.version, options.since);
  const seen = workers.map((w) => `${w.pmId}:${w.status}@${w.version ?? '?'}`).join(', ') || 'none';
  return { ok: false, reason: bootError ?? `workers not up on ${options.version} within ${options.deadlineMs} ms (seen ${seen})`, workers };
}

/** The same processes, each still online with the same pid and restart count. */
function same(before: Pm2Process[], after: Pm2Process[]): boolean {
  return after.length === before.length && after.every((p) => {
    const b = before.find((x) => x.pmId === p.pmId);
    return b !== undefined && p.status === 'online' && p.pid === b.pid && p.restarts === b.restarts;
  });
}

// Polling interval of a wait that has its own deadline (never a bare sleep standing in for an event).
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
