import { canaryCount, formatCanarySize } from '../canary-size.js';
import { HEALTH_DEFAULTS } from '../manifest.js';
import type { ActivationRequest, ActivationResult, CanarySpec, DeploymentPhase, PhaseName, WorkerReport } from '../messages.js';
import { activation, checksFor, describeOffer, movePointer, portConflict, REPORT_PING_MS, targetState, workerReport } from './activation.js';
import type { ActivationContext } from './activation.js';
import { watchCanary } from './canary-watch.js';
import type { Pm2Process } from './client.js';
import { liveWorkers } from './health.js';
import type { LiveWorker } from './health.js';
import { accepted, hungOf, moved, offerUpdate, replaceHung } from './offer.js';
import type { Checks, Offer } from './offer.js';
import { sameEnv } from './state.js';
import type { AppState } from './state.js';

/**
 * A push with a canary on one host: the update goes to `size` workers first (the one-worker-first
 * offer, over the canary's workers), they are watched for `watchMs` (canary-watch.ts), and only then
 * the rest take it. The agent's pointer stays on the release before until the canary passed, so a
 * worker PM2 restarts meanwhile comes back on that release. A canary that fails is swapped back hot
 * (killed and restarted from the pointer where a swap back fails); the other workers never change.
 *
 * The canary is a hot-path stage: a first start, a changed env or instance count, a reload asked
 * for, or a release the canary's workers cannot take hot goes the reload path as a whole
 * (`activation`), with the phase recorded as skipped and why.
 */
export async function canaryActivation(ctx: ActivationContext, request: ActivationRequest & { canary: CanarySpec }, running: AppState | undefined): Promise<ActivationResult> {
  const phases = new Phases(ctx);
  const target = targetState(request);
  const procs = await ctx.processes.processes(request.app);
  const skip = whyNotHot(request, running, target, procs);
  if (skip) return withoutCanary(ctx, phases, request, running, skip);
  const conflict = await portConflict(ctx.states, ctx.processes, target, running);
  if (conflict) return { status: 'failed', path: 'none', code: 'HOT_ERR_PORT_CONFLICT', reason: conflict, workers: [] };
  const before = running!;

  const { canary, rest } = split(procs, canaryCount(request.canary.size, procs.length));
  const checks = checksFor(request);
  const size = formatCanarySize(request.canary.size);
  phases.start('canary', canary, `${canary.length} of ${procs.length} worker(s) (--canary ${size})`);
  // The canary's windows last as long as the watch, so they count what its workers answer throughout
  // (with the release's threshold even when `windowMs: 0` turned the window after a push off).
  const health = request.manifest.health;
  const window = health === false ? undefined : { ...(health ?? HEALTH_DEFAULTS), windowMs: request.canary.watchMs };
  const windowed: Checks = { ...checks, ...(window ? { window: { windowMs: window.windowMs, threshold: window.threshold, errorRate: window.errorRate } } : {}) };
  const first = await offerUpdate(ctx, canary, target, windowed);
  if (first.some(mustReload)) {
    phases.end('canary', 'skipped', `the release cannot be applied hot (${first.filter(mustReload).map(describeOffer).join('; ')}): it goes the reload path as a whole`);
    await putBack(ctx, before, first);
    return withoutCanary(ctx, phases, request, running, undefined);
  }
  if (!(first.length === canary.length && first.every(accepted))) {
    const why = first.filter((o) => !accepted(o)).map(describeOffer).join('; ') || 'not every canary worker was offered it';
    phases.end('canary', 'failed', why);
    return failed(ctx, phases, target, before, first, `the canary failed: ${why}`);
  }
  phases.end('canary', 'passed');

  phases.start('watch', canary, `${request.canary.watchMs} ms`);
  const watched = await watchCanary(ctx, {
    app: request.app, version: target.version, watchMs: request.canary.watchMs,
    // A worker runs a window only after a hot swap (an `unchanged` update swaps nothing).
    workers: first.map((o) => ({ pmId: o.proc.pmId, pid: 'result' in o ? o.pid : o.proc.pid ?? 0, window: window !== undefined && 'result' in o && o.result.outcome === 'hot' })),
    ...(checks.probe ? { probe: checks.probe } : {}),
  });
  if (!watched.ok) {
    phases.end('watch', 'failed', watched.reason, watched.figures);
    return failed(ctx, phases, target, before, first, `the canary failed its watch: ${watched.reason}`);
  }
  phases.end('watch', 'passed', undefined, watched.figures);

  // Read again: a worker PM2 restarted during the watch is another process now (on the release before).
  const restIds = new Set(rest.map((p) => p.pmId));
  const now = rest.length > 0 ? (await ctx.processes.fresh(request.app)).filter((p) => restIds.has(p.pmId)) : [];
  phases.start('rest', now, `${now.length} worker(s)`);
  const others = now.length > 0 ? await offerUpdate(ctx, now, target, checks) : [];
  if (others.some(mustReload)) {
    phases.end('rest', 'skipped', `the other workers cannot take it hot (${others.filter(mustReload).map(describeOffer).join('; ')}): the reload path as a whole`);
    return withoutCanary(ctx, phases, request, running, undefined);
  }
  if (!others.every(accepted)) {
    const why = others.filter((o) => !accepted(o)).map(describeOffer).join('; ');
    phases.end('rest', 'failed', why);
    return failed(ctx, phases, target, before, [...first, ...others], `the canary passed, but the other workers did not take it: ${why}`);
  }
  await movePointer(ctx, target);
  phases.end('rest', 'passed');
  const workers = [...first, ...others].sort((a, b) => a.proc.pmId - b.proc.pmId).map((o) => hotReport(ctx, target.version, o));
  return { status: 'succeeded', path: 'hot', workers, phases: phases.list };
}

/** Why this activation cannot run a canary (it is no hot update of running workers), or undefined. */
function whyNotHot(request: ActivationRequest, running: AppState | undefined, target: AppState, procs: Pm2Process[]): string | undefined {
  if (procs.length === 0 || running === undefined) return 'nothing runs the app on this host yet: it starts on every worker';
  if (!sameEnv(running.env, target.env)) return 'the env or port changed: only a reload can apply it';
  if (request.strategy === 'reload') return 'a reload was asked for';
  if (procs.length !== target.instances) return `${procs.length} instance(s) running, ${target.instances} wanted: only a reload can apply it`;
  if (!procs.every((p) => p.status === 'online')) return `not every worker is online (${procs.map((p) => `${p.pmId}:${p.status}`).join(', ')})`;
  return undefined;
}

/** The canary workers first: the lowest pm_ids, so a canary of the same size reaches the same workers again. */
function split(procs: Pm2Process[], size: number): { canary: Pm2Process[]; rest: Pm2Process[] } {
  const sorted = [...procs].sort((a, b) => a.pmId - b.pmId);
  return { canary: sorted.slice(0, size), rest: sorted.slice(size) };
}

/** A worker declined the update or it reached a module nobody accepts: webpack's abort, nothing changed there. */
function mustReload(offer: Offer): boolean {
  return 'result' in offer && (offer.result.outcome === 'declined' || offer.result.outcome === 'unaccepted');
}

/** The whole activation without a canary (the reload path, where it must reload), with the phases so far. */
async function withoutCanary(ctx: ActivationContext, phases: Phases, request: ActivationRequest, running: AppState | undefined, skipped: string | undefined): Promise<ActivationResult> {
  if (skipped) {
    phases.start('canary', [], undefined);
    phases.end('canary', 'skipped', skipped);
  }
  const { canary: _asked, ...plain } = request;
  const result = await activation(ctx, skipped ? plain : { ...plain, strategy: 'reload' }, running);
  return { ...result, phases: phases.list };
}

/**
 * The canary failed: its workers go back to the release before — hot, or killed and restarted by
 * PM2 from the pointer, which never left that release — and the others were never offered anything.
 */
async function failed(ctx: ActivationContext, phases: Phases, target: AppState, before: AppState, offers: Offer[], reason: string): Promise<ActivationResult> {
  const touched = offers.filter((o) => moved(o) || 'result' in o || hungOf(o)).map((o) => o.proc);
  phases.start('swap-back', touched, `to ${before.version}`);
  const lost = await putBack(ctx, before, offers);
  phases.end('swap-back', lost.length ? 'failed' : 'passed', lost.length ? lost.join('; ') : undefined);
  const live = await liveWorkers(ctx.processes, ctx.channel, target.app, REPORT_PING_MS).catch(() => [] as LiveWorker[]);
  const canary = new Set(touched.map((p) => p.pmId));
  const workers: WorkerReport[] = live.map((w) => canary.has(w.pmId)
    ? workerReport({ host: ctx.settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: lost.length ? 'failed' : 'rolled-back', durationMs: Date.now() - ctx.started, reason })
    : workerReport({ host: ctx.settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: 'unchanged', durationMs: 0, reason: `outside the canary: never offered ${target.version}` }));
  const full = lost.length ? `${reason}; the canary did not all come back to ${before.version}: ${lost.join('; ')}` : `${reason}; the canary went back to ${before.version}`;
  return { status: lost.length ? 'failed' : 'rolled-back', path: 'hot', reason: full, workers, phases: phases.list };
}

/**
 * Swaps the workers that took (or half-took) the release back to `before`, hot; a worker that does
 * not take it back, or is stuck in the update, is killed and PM2 restarts it from the pointer. Only
 * these workers are touched. Resolves with a sentence per worker that did not come back.
 */
async function putBack(ctx: ActivationContext, before: AppState, offers: Offer[]): Promise<string[]> {
  const stuck = offers.flatMap((o) => { const h = hungOf(o); return h ? [{ pmId: o.proc.pmId, hung: h }] : []; });
  const swapped = offers.filter((o): o is Offer & { pid: number } => 'result' in o && (moved(o) || o.result.outcome === 'failed'));
  if (swapped.length > 0) ctx.emit(`swapping ${swapped.length} canary worker(s) back to ${before.version}`);
  const answers = await Promise.all(swapped.map(async (o) => {
    const reply = await ctx.channel.request(o.proc.pmId, { kind: 'update', version: before.version, releaseDir: before.releaseDir }, ctx.settings.updateTimeoutMs, o.pid)
      .catch(() => undefined);
    const back = reply?.kind === 'updated' && (reply.result.outcome === 'hot' || reply.result.outcome === 'unchanged');
    return back ? undefined : { pmId: o.proc.pmId, hung: { pid: o.pid } };
  }));
  const kill = [...stuck, ...answers.filter((a) => a !== undefined)];
  if (kill.length === 0) return [];
  return replaceHung(ctx, before.app, kill, ctx.settings.listenTimeoutMs + ctx.settings.killTimeoutMs);
}

function hotReport(ctx: ActivationContext, version: string, offer: Offer): WorkerReport {
  if (!('result' in offer)) return workerReport({ host: ctx.settings.host, pmId: offer.proc.pmId, pid: offer.proc.pid, version: null, outcome: 'failed', durationMs: offer.durationMs, reason: offer.error });
  const outcome = offer.result.outcome === 'unchanged' ? 'unchanged' : 'hot';
  return { ...workerReport({ host: ctx.settings.host, pmId: offer.proc.pmId, pid: offer.pid, version, outcome, durationMs: offer.durationMs, update: offer.result }), ...(offer.timing ? { timing: offer.timing } : {}) };
}

/** The phases of one canary activation, each passed on to the agent's events as it starts and ends. */
class Phases {
  readonly list: DeploymentPhase[] = [];

  constructor(private readonly ctx: ActivationContext) {}

  start(name: PhaseName, procs: Pm2Process[], about: string | undefined): void {
    const phase: DeploymentPhase = { name, status: 'running', host: this.ctx.settings.host, workers: procs.map((p) => p.pmId), startedAt: new Date().toISOString() };
    this.list.push(phase);
    if (about) this.ctx.emit(`${name}: ${about}${procs.length ? ` (worker(s) ${procs.map((p) => p.pmId).join(', ')})` : ''}`);
    this.ctx.phase?.({ ...phase });
  }

  end(name: PhaseName, status: DeploymentPhase['status'], reason?: string, watch?: DeploymentPhase['watch']): void {
    const phase = this.list.find((p) => p.name === name);
    if (!phase) return;
    Object.assign(phase, { status, finishedAt: new Date().toISOString(), ...(reason ? { reason } : {}), ...(watch ? { watch } : {}) });
    this.ctx.emit(`${name} ${status}${reason ? `: ${reason}` : ''}`);
    this.ctx.phase?.({ ...phase });
  }
}
