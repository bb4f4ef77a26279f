import type { ProbeResult, ProbeSpec, WorkerStats } from '../messages.js';
import { describeProbe } from '../runtime/probe.js';
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
  /** The health probe every worker answers once it is up (none: `"health": false`). */
  probe?: ProbeSpec;
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
  // Restart counts as first seen in this gate: PM2 marks a crash loop `errored` only after 15 quick
  // restarts, which a loaded machine takes longer than the gate's deadline to reach.
  const firstRestarts = new Map<number, number>();
  while (Date.now() < deadline) {
    const bootError = channel.bootFailure(options.app, options.version, options.since);
    if (bootError) return { ok: false, reason: `a worker could not start ${options.version}: ${bootError}`, workers };
    const procs = await own();
    if (procs.some((p) => p.status === 'errored')) {
      return { ok: false, reason: `PM2 marked a worker errored (crash loop) on ${options.version}`, workers };
    }
    for (const p of procs) if (!firstRestarts.has(p.pmId)) firstRestarts.set(p.pmId, p.restarts);
    const looping = procs.find((p) => p.restarts - (firstRestarts.get(p.pmId) ?? p.restarts) >= CRASH_LOOP_RESTARTS);
    if (looping) {
      return { ok: false, reason: `worker ${looping.pmId} restarted ${looping.restarts - (firstRestarts.get(looping.pmId) ?? 0)} times on ${options.version} (crash loop)`, workers };
    }
    workers = await liveWorkers(processes, channel, options.app, 1_000, exclude);
    if (workers.length >= options.instances && workers.every((w) => w.status === 'online' && w.version === options.version)) {
      await pause(options.settleMs);
      if (same(procs, await own())) {
        if (!options.probe) return { ok: true, workers };
        const probed = await probeWorkers(channel, workers, options.probe);
        if (probed.failed) return { ok: false, reason: probed.failed, workers };
        // A worker that did not answer the request (busy, replaced) is asked again, within the deadline.
        if (probed.answered) return { ok: true, workers };
      }
    } else {
      await pause(150);
    }
  }
  const bootError = channel.bootFailure(options.app, options.version, options.since);
  const seen = workers.map((w) => `${w.pmId}:${w.status}@${w.version ?? '?'}`).join(', ') || 'none';
  return { ok: false, reason: bootError ?? `workers not up on ${options.version} within ${options.deadlineMs} ms (seen ${seen})`, workers };
}

/**
 * Asks each worker to run the health probe through its own handler (an in-process request: workers
 * share one port, so a request over the network could reach any of them). `failed`: the first
 * worker whose probe failed, in one line with the status and the start of the body; `answered`:
 * whether every worker answered the request at all.
 */
export async function probeWorkers(channel: WorkerChannel, workers: readonly Pick<LiveWorker, 'pmId' | 'pid'>[], spec: ProbeSpec): Promise<{ failed?: string; answered: boolean }> {
  const results = await Promise.all(workers.map(async (w) => {
    const reply = await channel.request(w.pmId, { kind: 'probe', probe: spec }, spec.timeoutMs + PROBE_MARGIN_MS, w.pid).catch(() => undefined);
    return { pmId: w.pmId, probe: reply?.kind === 'probed' ? reply.probe : undefined };
  }));
  const failed = results.find((r) => r.probe !== undefined && !r.probe.ok);
  return {
    ...(failed?.probe ? { failed: probeFailure(failed.pmId, spec, failed.probe) } : {}),
    answered: results.every((r) => r.probe !== undefined),
  };
}

/** What the reason of a deployment says about a worker whose probe failed. */
export function probeFailure(pmId: number, spec: ProbeSpec, result: ProbeResult): string {
  return `worker ${pmId} failed the health probe: ${describeProbe(spec, result)}`;
}

/** Restarts of one worker within a gate that make it a crash loop. */
const CRASH_LOOP_RESTARTS = 3;

/** Time on top of the probe's own timeout for the request to reach the worker and come back. */
export const PROBE_MARGIN_MS = 2_000;

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
