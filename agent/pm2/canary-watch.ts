import type { ProbeSpec, WatchFigures, WindowReport } from '../messages.js';
import type { ActivationContext } from './activation.js';
import type { WorkerChannel } from './channel.js';
import { probeFailure } from './health.js';

/** A canary worker as it took the release: the process that must still be the one serving it at the end. */
export interface Watched {
  pmId: number;
  pid: number;
  /** Whether it runs a health window as long as the watch and reports how it ended. */
  window: boolean;
}

export interface WatchOptions {
  app: string;
  version: string;
  workers: Watched[];
  watchMs: number;
  /** The health probe, asked of each canary worker again and again (none with `"health": false`). */
  probe?: ProbeSpec;
}

export type WatchResult = { ok: true; figures: WatchFigures } | { ok: false; reason: string; figures: WatchFigures };

/**
 * The canary workers under watch, per channel (`pmId:pid:version`): their health windows are the
 * watch's to judge, and the agent says so when it passes their reports on (no auto-rollback for them).
 */
const underWatch = new WeakMap<WorkerChannel, Set<string>>();

export function inCanaryWatch(channel: WorkerChannel, pmId: number, pid: number, version: string): boolean {
  return underWatch.get(channel)?.has(`${pmId}:${pid}:${version}`) ?? false;
}

/** How long after the watch a canary worker's window report may still be on its way. */
const REPORT_GRACE_MS = 5_000;

/**
 * Watches the canary workers for `watchMs`, failing at the first sign of trouble:
 * - a worker's health window trips (5xx answers and uncaught exceptions past the release's threshold:
 *   what only shows under real traffic) — the worker reports it the moment it happens;
 * - a worker fails the health probe, which runs through its own handler every `probeEveryMs`, or
 *   answers it from another version;
 * - a worker's process is gone, restarted or no longer online (PM2 restarts it on the agent's pointer,
 *   which still names the release before, so it no longer runs the canary's release).
 * It passes when the time is up and every worker's window (when it runs one) reported that it passed.
 */
export async function watchCanary(ctx: ActivationContext, options: WatchOptions): Promise<WatchResult> {
  const figures: WatchFigures = { watchMs: options.watchMs, probes: 0, requests: 0, errors: 0 };
  const reports = new Map<number, WindowReport>();
  let tripped: string | undefined;
  let wake: () => void = () => undefined;
  const undo = ctx.channel.onWindow((message, pmId) => {
    const worker = options.workers.find((w) => w.pmId === pmId && w.pid === message.pid);
    if (!worker || message.app !== options.app || message.version !== options.version || reports.has(pmId)) return;
    reports.set(pmId, message.report);
    figures.requests += message.report.requests;
    figures.errors += message.report.errors5xx + message.report.exceptions;
    if (message.report.tripped) tripped ??= windowTripped(pmId, message.report);
    wake();
  });
  const fail = (reason: string): WatchResult => ({ ok: false, reason, figures });
  const keys = options.workers.map((w) => `${w.pmId}:${w.pid}:${options.version}`);
  const watching = underWatch.get(ctx.channel) ?? new Set<string>();
  underWatch.set(ctx.channel, watching);
  for (const key of keys) watching.add(key);
  try {
    const started = Date.now();
    const end = started + options.watchMs;
    const restarts = await restartCounts(ctx, options);
    const every = Math.min(2_000, Math.max(200, Math.floor(options.watchMs / 10)));
    while (Date.now() < end) {
      if (tripped) return fail(tripped);
      const gone = await processTrouble(ctx, options, restarts);
      if (gone) return fail(gone);
      if (options.probe) {
        const bad = await probeAll(ctx, options, options.probe, figures);
        if (bad) return fail(bad);
      }
      if (tripped) return fail(tripped);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(every, Math.max(0, end - Date.now())));
        wake = () => { clearTimeout(timer); resolve(); };
      });
      ctx.signal.throwIfAborted();
    }
    const gone = await processTrouble(ctx, options, restarts);
    if (gone) return fail(gone);
    const windowed = options.workers.filter((w) => w.window);
    // The windows began at the swap, a little before the watch: their reports are due about now.
    const deadline = Date.now() + REPORT_GRACE_MS;
    while (!tripped && windowed.some((w) => !reports.has(w.pmId)) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    if (tripped) return fail(tripped);
    const silent = windowed.filter((w) => !reports.has(w.pmId)).map((w) => w.pmId);
    if (silent.length > 0) return fail(`worker(s) ${silent.join(', ')} sent no health-window report within ${REPORT_GRACE_MS} ms of the watch's end`);
    return { ok: true, figures };
  } finally {
    undo();
    for (const key of keys) watching.delete(key);
  }
}

function windowTripped(pmId: number, report: WindowReport): string {
  return `worker ${pmId}'s health window tripped after ${report.elapsedMs} ms: ${report.errors5xx} 5xx answer(s) and `
    + `${report.exceptions} uncaught exception(s) in ${report.requests} answer(s)${report.sample ? ` (first: ${report.sample})` : ''}`;
}

async function restartCounts(ctx: ActivationContext, options: WatchOptions): Promise<Map<number, number>> {
  const procs = await ctx.processes.fresh(options.app);
  return new Map(procs.map((p) => [p.pmId, p.restarts]));
}

/** A canary worker that is not the same online process any more, in one line. */
async function processTrouble(ctx: ActivationContext, options: WatchOptions, restarts: Map<number, number>): Promise<string | undefined> {
  const procs = await ctx.processes.fresh(options.app);
  for (const w of options.workers) {
    const now = procs.find((p) => p.pmId === w.pmId);
    if (!now) return `worker ${w.pmId} is gone`;
    if (now.pid !== w.pid || now.restarts !== restarts.get(w.pmId)) {
      return `worker ${w.pmId} restarted during the watch (pid ${w.pid} → ${now.pid ?? 'none'}) and no longer runs ${options.version}`;
    }
    if (now.status !== 'online') return `worker ${w.pmId} is ${now.status}`;
  }
  return undefined;
}

/** The probe through each canary worker's own handler; the first failure (or another version answering) in one line. */
async function probeAll(ctx: ActivationContext, options: WatchOptions, spec: ProbeSpec, figures: WatchFigures): Promise<string | undefined> {
  const answers = await Promise.all(options.workers.map(async (w) => {
    const reply = await ctx.channel.request(w.pmId, { kind: 'probe', probe: spec }, spec.timeoutMs + PROBE_MARGIN_MS, w.pid)
      .catch((err: unknown) => (err as Error).message);
    return { w, reply };
  }));
  for (const { w, reply } of answers) {
    if (typeof reply === 'string') return `worker ${w.pmId} did not answer the health probe: ${reply}`;
    if (reply.kind !== 'probed') return `worker ${w.pmId} answered the probe with ${reply.kind}`;
    figures.probes++;
    if (reply.version !== options.version) return `worker ${w.pmId} serves ${reply.version}, not ${options.version}`;
    if (!reply.probe.ok) return probeFailure(w.pmId, spec, reply.probe);
  }
  return undefined;
}

/** Time on top of the probe's own timeout for the request to reach the worker and come back. */
const PROBE_MARGIN_MS = 2_000;
