import type { ProbeResult, ProbeSpec, UpdateResult, UpdateTiming, WindowSpec } from '../messages.js';
import { isHotError } from '../errors.js';
import type { ActivationContext } from './activation.js';
import type { Pm2Process } from './client.js';
import { preciseNow } from './protocol.js';
import type { AppState } from './state.js';

/** One worker's answer to an update; a worker that is down, silent or stuck is an answer too. */
export type Offer = { proc: Pm2Process; durationMs: number } & (
  | { result: UpdateResult; pid: number; timing?: UpdateTiming; probe?: ProbeResult }
  | { error: string; hung?: Hung });

/** A worker that did not finish the update within the deadline: what it was evaluating, if it said. */
export interface Hung {
  pid: number;
  module?: string;
}

/** What a worker checks after it swapped: the health probe before it answers, the window after. */
export interface Checks {
  probe?: ProbeSpec;
  window?: WindowSpec;
}

/** The worker moved to the release (hot or unchanged) and, when it was asked to, passed the probe. */
export function accepted(offer: Offer): boolean {
  return moved(offer) && !probeFailed(offer);
}

/** The worker serves the release now, whether or not it passed the probe. */
export function moved(offer: Offer): boolean {
  return 'result' in offer && (offer.result.outcome === 'hot' || offer.result.outcome === 'unchanged');
}

export function probeFailed(offer: Offer): boolean {
  return 'result' in offer && offer.probe !== undefined && !offer.probe.ok;
}

export function hungOf(offer: Offer): Hung | undefined {
  return 'error' in offer ? offer.hung : undefined;
}

/**
 * Offers the update to one worker first and to the rest only once that one took it (hot or
 * unchanged): a release whose module blocks or spins while it evaluates then holds one worker until
 * the deadline, never all of them, and one the first worker declines costs the others nothing.
 */
export async function offerUpdate(ctx: ActivationContext, procs: Pm2Process[], target: AppState, checks: Checks = {}): Promise<Offer[]> {
  const first = procs.find((p) => p.status === 'online') ?? procs[0];
  if (!first) return [];
  const rest = procs.filter((p) => p !== first);
  // The request is on its way (a worker's link or the daemon's socket) before the event and its log line.
  const pending = offerOne(ctx, first, target, checks);
  ctx.emit(`offering ${target.version} to worker ${first.pmId}${rest.length ? `, then ${rest.length} more` : ''}`);
  const offers = [await pending];
  ctx.signal.throwIfAborted();
  if (!accepted(offers[0]!)) return offers;
  offers.push(...await Promise.all(rest.map((proc) => offerOne(ctx, proc, target, checks))));
  ctx.signal.throwIfAborted();
  return offers.sort((a, b) => a.proc.pmId - b.proc.pmId);
}

async function offerOne(ctx: ActivationContext, proc: Pm2Process, target: AppState, checks: Checks): Promise<Offer> {
  const t0 = Date.now();
  if (proc.status !== 'online') return { proc, error: `worker is ${proc.status}`, durationMs: 0 };
  try {
    const sentAt = preciseNow();
    // The probe runs before the worker answers: its time counts in the update's deadline.
    const reply = await ctx.channel.request(proc.pmId, { kind: 'update', version: target.version, releaseDir: target.releaseDir, ...checks }, ctx.settings.updateTimeoutMs, proc.pid);
    if (reply.kind !== 'updated') return { proc, error: `unexpected answer ${reply.kind}`, durationMs: Date.now() - t0 };
    const timing = reply.receivedAt !== undefined && reply.answeredAt !== undefined ? { sentAt, receivedAt: reply.receivedAt, answeredAt: reply.answeredAt } : undefined;
    return { proc, result: reply.result, pid: reply.pid, durationMs: Date.now() - t0, ...(timing ? { timing } : {}), ...(reply.probe ? { probe: reply.probe } : {}) };
  } catch (err) {
    const durationMs = Date.now() - t0;
    if (!isHotError(err, 'HOT_ERR_TIMEOUT') || proc.pid === null) return { proc, error: (err as Error).message, durationMs };
    const module = (err as { module?: unknown }).module;
    const hung: Hung = { pid: proc.pid, ...(typeof module === 'string' ? { module } : {}) };
    const evaluating = hung.module ? ` (evaluating ${hung.module})` : '';
    return { proc, error: `did not finish the update to ${target.version} within ${ctx.settings.updateTimeoutMs} ms${evaluating}`, hung, durationMs };
  }
}

/**
 * Kills the workers that did not finish their update in time (SIGKILL: a worker stuck in its
 * module's evaluation runs no signal handler) and waits until PM2 has replaced each. The
 * replacement boots from the agent's pointer, which still names the last good release. Resolves
 * with a sentence per worker that did not come back within `deadlineMs`.
 */
export async function replaceHung(ctx: ActivationContext, app: string, hung: { pmId: number; hung: Hung }[], deadlineMs: number): Promise<string[]> {
  for (const { hung: h } of hung) {
    try {
      process.kill(h.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ctx.emit(`killed ${hung.map((h) => `worker ${h.pmId} (pid ${h.hung.pid})`).join(', ')}; waiting for PM2 to replace ${hung.length === 1 ? 'it' : 'them'}`);
  const deadline = Date.now() + deadlineMs;
  let missing = hung;
  while (Date.now() < deadline) {
    const procs = await ctx.processes.fresh(app);
    missing = missing.filter(({ pmId, hung: h }) => {
      const now = procs.find((p) => p.pmId === pmId);
      return now !== undefined && !(now.status === 'online' && now.pid !== null && now.pid !== h.pid && answered(ctx, now));
    });
    if (missing.length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return missing.map(({ pmId }) => `worker ${pmId} did not come back within ${deadlineMs} ms`);
}

/** PM2's `online` for a worker that has not answered yet is not enough: it must have booted. */
function answered(ctx: ActivationContext, proc: Pm2Process): boolean {
  return ctx.channel.hasBooted(proc.pmId, proc.pid);
}
