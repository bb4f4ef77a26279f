import type { WorkerStats } from '../messages.js';
import type { WorkerChannel } from './channel.js';
import type { Pm2Client, Pm2Process } from './client.js';

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
}

export type GateResult = { ok: true; workers: LiveWorker[] } | { ok: false; reason: string; workers: LiveWorker[] };

/** Asks every online worker of `app` which version it serves; silent ones report null. */
export async function liveWorkers(client: Pm2Client, channel: WorkerChannel, app: string, timeoutMs = 1_000): Promise<LiveWorker[]> {
  const procs = await client.describe(app);
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
export async function healthGate(client: Pm2Client, channel: WorkerChannel, options: GateOptions): Promise<GateResult> {
  const deadline = Date.now() + options.deadlineMs;
  let workers: LiveWorker[] = [];
  while (Date.now() < deadline) {
    const bootError = channel.bootFailure(options.app, options.version, options.since);
    if (bootError) return { ok: false, reason: `a worker could not start ${options.version}: ${bootError}`, workers };
    const procs = await client.describe(options.app);
    if (procs.some((p) => p.status === 'errored')) {
      return { ok: false, reason: `PM2 marked a worker errored (crash loop) on ${options.version}`, workers };
    }
    workers = await liveWorkers(client, channel, options.app);
    if (workers.length >= options.instances && workers.every((w) => w.status === 'online' && w.version === options.version)) {
      if (await settled(client, procs, options.settleMs)) return { ok: true, workers };
    } else {
      await pause(150);
    }
  }
  const bootError = channel.bootFailure(options.app, options.version, options.since);
  const seen = workers.map((w) => `${w.pmId}:${w.status}@${w.version ?? '?'}`).join(', ') || 'none';
  return { ok: false, reason: bootError ?? `workers not up on ${options.version} within ${options.deadlineMs} ms (seen ${seen})`, workers };
}

async function settled(client: Pm2Client, before: Pm2Process[], settleMs: number): Promise<boolean> {
  await pause(settleMs);
  const after = await client.describe(before[0]?.name ?? '');
  return after.length === before.length && after.every((p) => {
    const b = before.find((x) => x.pmId === p.pmId);
    return b !== undefined && p.status === 'online' && p.pid === b.pid && p.restarts === b.restarts;
  });
}

// Polling interval of a wait that has its own deadline (never a bare sleep standing in for an event).
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
