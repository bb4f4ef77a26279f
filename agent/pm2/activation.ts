import { healthChecks } from '../manifest.js';
import type { ActivationRequest, ActivationResult, DeploymentPhase, ProbeSpec, UpdateResult, WorkerReport } from '../messages.js';
import type { WorkerChannel } from './channel.js';
import { healthGate, liveWorkers, probeFailure } from './health.js';
import type { GateOptions, GateResult, LiveWorker } from './health.js';
import { markerEnv } from './names.js';
import { accepted, hungOf, moved, offerUpdate, probeFailed, replaceHung } from './offer.js';
import type { Checks, Offer } from './offer.js';
import { portOf, portOwner, probePort } from './ports.js';
import type { ProcessTable } from './process-table.js';
import { sameEnv } from './state.js';
import type { AppState, AppStates } from './state.js';
import { trialStart } from './trial.js';

export interface ActivationSettings {
  dataDir: string;
  /** Where workers connect to the agent directly (worker-links.ts); undefined: through PM2 only. */
  agentSocket: string | undefined;
  host: string;
  bootstrap: string;
  /** The environment apps get beside their own settings: the base and the names passed through (environment.ts). */
  appEnv: Record<string, string>;
  listenTimeoutMs: number;
  killTimeoutMs: number;
  /** How long a worker may take to apply an update before it counts as stuck, is killed and replaced. */
  updateTimeoutMs: number;
  trialTimeoutMs: number;
  settleMs: number;
}

/** What one activation works with. `signal` aborts it when the agent gave up on it (daemon lost). */
export interface ActivationContext {
  channel: WorkerChannel;
  /** The app's processes: found by hotdeploy's marker, acted on by pm_id, kept from PM2's bus. */
  processes: ProcessTable;
  /** The agent's pointers, kept in memory and written through. */
  states: AppStates;
  settings: ActivationSettings;
  emit: (message: string) => void;
  /** A canary phase started or ended (canary.ts); the agent passes it on with its events. */
  phase?: (phase: DeploymentPhase) => void;
  signal: AbortSignal;
  started: number;
}

const DEFAULT_INSTANCES = 2;

export function targetState(request: ActivationRequest): AppState {
  const { manifest } = request;
  return {
    app: request.app,
    version: request.version,
    releaseDir: request.releaseDir,
    instances: manifest.instances ?? DEFAULT_INSTANCES,
    env: { ...manifest.env, ...(manifest.port === undefined ? {} : { PORT: String(manifest.port) }) },
  };
}

/** Starts the app's processes under PM2 with a clean environment: the base, its own env, hotdeploy's. */
export function startApp(processes: ProcessTable, settings: ActivationSettings, state: AppState): Promise<void> {
  return processes.start(state.app, {
    script: settings.bootstrap,
    // A directory that never changes: the bootstrap moves cwd to the release it hosts.
    cwd: settings.dataDir,
    instances: state.instances,
    env: {
      ...settings.appEnv,
      ...state.env,
      ...markerEnv(settings.dataDir, state.app),
      HOTDEPLOY_KILL_TIMEOUT_MS: String(settings.killTimeoutMs),
      ...(settings.agentSocket ? { HOTDEPLOY_AGENT_SOCKET: settings.agentSocket } : {}),
    },
    listenTimeoutMs: settings.listenTimeoutMs,
    killTimeoutMs: settings.killTimeoutMs,
  });
}

/** Moves the agent's pointer, unless the activation was abandoned (its caller restores the pointer). */
export async function movePointer(ctx: ActivationContext, state: AppState): Promise<void> {
  ctx.signal.throwIfAborted();
  await ctx.states.write(state);
}

/**
 * The activation algorithm. A port another app of this host has fails it before anything changes.
 * First activation: start under PM2, then the health gate. Later ones: offer the update to one
 * worker, then to the rest (offer.ts); all `hot`/`unchanged` ends there. A worker that did not
 * finish in time is killed and replaced on the last good release. Otherwise fall back: trial-start
 * the release (if it cannot boot nothing is reloaded, and workers that already swapped are swapped
 * back), point the agent's state at it, `pm2 reload`, then the gate; a failed gate points back and
 * reloads the previous release.
 */
export async function activation(ctx: ActivationContext, request: ActivationRequest, running: AppState | undefined): Promise<ActivationResult> {
  const { settings } = ctx;
  const target = targetState(request);
  const before: AppState | undefined = running
    ?? (request.previous ? { ...target, version: request.previous.version, releaseDir: request.previous.releaseDir } : undefined);
  const conflict = await portConflict(ctx.states, ctx.processes, target, running);
  if (conflict) return { status: 'failed', path: 'none', code: 'HOT_ERR_PORT_CONFLICT', reason: conflict, workers: [] };
  const checks = checksFor(request);
  const procs = await ctx.processes.processes(request.app);
  if (procs.length === 0) return firstStart(ctx, target, before, checks.probe);

  // A process's environment (and so its port) is fixed at its start: only a reload can change it.
  const envChanged = running !== undefined && !sameEnv(running.env, target.env);
  // A cluster deploy whose dry run found this host cannot go hot, or `--strategy reload-all`.
  const reloadAsked = request.strategy === 'reload';
  const offers = envChanged || reloadAsked ? [] : await offerUpdate(ctx, procs, target, checks);
  const unhealthy = offers.find(probeFailed);
  if (unhealthy && 'result' in unhealthy && unhealthy.probe && checks.probe) {
    return probeRollback(ctx, target, before, offers, probeFailure(unhealthy.proc.pmId, checks.probe, unhealthy.probe));
  }
  const hung = offers.flatMap((o) => { const h = hungOf(o); return h ? [{ pmId: o.proc.pmId, hung: h }] : []; });
  if (!envChanged && !reloadAsked && hung.length === 0 && offers.length === procs.length && offers.every(accepted) && procs.length === target.instances) {
    await movePointer(ctx, target);
    const workers = offers.map((o) => 'result' in o
      ? { ...workerReport({ host: settings.host, pmId: o.proc.pmId, pid: o.pid, version: target.version, outcome: o.result.outcome === 'unchanged' ? 'unchanged' : 'hot', durationMs: o.durationMs, update: o.result }),
        ...(o.timing ? { timing: o.timing } : {}), ...(o.probe ? { probe: o.probe } : {}) }
      : workerReport({ host: settings.host, pmId: o.proc.pmId, pid: o.proc.pid, version: null, outcome: 'failed', durationMs: o.durationMs, reason: o.error }));
    return { status: 'succeeded', path: 'hot', workers };
  }

  const why = offers.filter((o) => !accepted(o)).map(describeOffer);
  if (offers.length > 0 && offers.length < procs.length) why.push(`the other ${procs.length - offers.length} worker(s) were not offered it`);
  if (envChanged) why.push('the env or port changed');
  if (reloadAsked) why.push('a reload was asked for');
  if (procs.length !== target.instances) why.push(`${procs.length} instance(s) running, ${target.instances} wanted`);
  // A stuck worker is replaced on the last good release before anything else runs.
  if (hung.length > 0) {
    ctx.emit(`${hung.length} worker(s) did not finish the update in time: ${why.join('; ')}`);
    const lost = await replaceHung(ctx, request.app, hung, settings.listenTimeoutMs + settings.killTimeoutMs);
    why.push(`killed and restarted on ${before?.version ?? 'the last release'}${lost.length ? ` (${lost.join('; ')})` : ''}`);
  }
  const fallback = why.join('; ');
  ctx.emit(`falling back to a graceful reload: ${fallback}`);

  const trial = await trialStart({ bootstrap: settings.bootstrap, app: target.app, version: target.version, releaseDir: target.releaseDir,
    env: { ...settings.appEnv, ...target.env }, timeoutMs: settings.trialTimeoutMs, signal: ctx.signal, ...(checks.probe ? { probe: checks.probe } : {}) });
  ctx.signal.throwIfAborted();
  if (!trial.ok) {
    ctx.emit(`trial start failed: ${trial.reason}`);
    // `failed` too: the runtime finishes a failed update on the new release (only the modules that
    // threw are missing), so those workers must be moved back like the ones that took it hot.
    const swapped = offers.filter((o) => 'result' in o && (o.result.outcome === 'hot' || o.result.outcome === 'failed')).map((o) => o.proc.pmId);
    const back = before ? await swapBack(ctx, before, swapped) : undefined;
    const failed = trial.probe ? 'failed the health probe in a trial run' : 'did not start in a trial run';
    const reason = `${target.version} ${failed} (${trial.reason}); nothing was reloaded; the fallback was needed because ${fallback}`;
    return back && !back.ok ? notBack(ctx, request.app, reason, before!, back.reason) : rolledBack(ctx, request.app, reason);
  }
  ctx.emit(`trial start ready in ${trial.durationMs} ms; reloading`);

  await movePointer(ctx, target);
  const gate = await reloadAndGate(ctx, target, checks.probe);
  if (gate.ok) {
    const workers = gate.workers.map((w) => workerReport({ host: settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: 'reloaded', durationMs: Date.now() - ctx.started, reason: fallback }));
    return { status: 'succeeded', path: 'reload', reason: fallback, workers };
  }
  ctx.emit(`health gate failed: ${gate.reason}`);
  if (!before) return { status: 'failed', path: 'reload', reason: `${gate.reason}; no previous release to go back to`, workers: [] };
  await movePointer(ctx, before);
  const reason = `${target.version} did not come up after the reload: ${gate.reason}`;
  const back = await bringBack(ctx, before);
  return back.ok ? rolledBack(ctx, request.app, reason) : notBack(ctx, request.app, reason, before, back.reason);
}

/**
 * What the workers check after moving to the release: the probe always (unless `"health": false`),
 * the window only after a push or an activation: a rollback goes back to a release that served
 * before, and a window on it could swing the app back to the release it just left.
 */
export function checksFor(request: ActivationRequest): Checks {
  const { probe, window } = healthChecks(request.manifest);
  const watched = request.kind === 'push' || request.kind === 'activate';
  return { ...(probe ? { probe } : {}), ...(window && watched ? { window } : {}) };
}

/**
 * A worker took the release but failed its health probe: every worker that moved is swapped back
 * hot to the release before (a reload of it where a swap back fails); nothing was reloaded, and the
 * agent's pointer never moved.
 */
async function probeRollback(ctx: ActivationContext, target: AppState, before: AppState | undefined, offers: Offer[], failure: string): Promise<ActivationResult> {
  ctx.emit(`${failure}; swapping back`);
  const reason = `${target.version}: ${failure}`;
  if (!before) return { status: 'failed', path: 'hot', reason: `${reason}; no previous release to go back to`, workers: [] };
  // `failed` too: a failed update leaves the worker on the new release, minus the modules that threw.
  const swapped = offers.filter((o) => moved(o) || ('result' in o && o.result.outcome === 'failed')).map((o) => o.proc.pmId);
  const back = await swapBack(ctx, before, swapped);
  if (back && !back.ok) return notBack(ctx, target.app, reason, before, back.reason);
  return rolledBack(ctx, target.app, `${reason}; ${back ? 'reloaded' : 'swapped back'} to ${before.version}`, back ? 'reload' : 'hot');
}

/**
 * Why the release cannot take its port here, before anything changes: another hotdeploy app of this
 * host has it, or (for a port the app does not hold yet) another process does.
 */
export async function portConflict(states: AppStates, processes: ProcessTable, target: AppState, running: AppState | undefined): Promise<string | undefined> {
  const port = portOf(target);
  if (port === undefined) return undefined;
  const owner = portOwner(await states.all(), target.app, port);
  if (owner !== undefined) return `port ${port} belongs to app ${owner} on this host`;
  // The app's own workers hold their port (or one the agent has no pointer for).
  if ((running === undefined || portOf(running) === port) && (await processes.processes(target.app)).length > 0) return undefined;
  const held = await probePort(port);
  return held ? `port ${port} is held by another process on this host (${held})` : undefined;
}

async function firstStart(ctx: ActivationContext, target: AppState, before: AppState | undefined, probe: ProbeSpec | undefined): Promise<ActivationResult> {
  const { processes, settings } = ctx;
  ctx.emit(`starting ${target.app}@${target.version} under PM2 (${target.instances} instance(s))`);
  await movePointer(ctx, target);
  const since = Date.now();
  const startError = await startApp(processes, settings, target).then(() => undefined, (err: unknown) => String(err));
  const gate = startError ? { ok: false as const, reason: startError, workers: [] } : await healthGate(processes, ctx.channel, gateOptions(settings, target, since, probe));
  if (gate.ok) {
    const workers = gate.workers.map((w) => workerReport({ host: settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: 'started', durationMs: Date.now() - ctx.started }));
    return { status: 'succeeded', path: 'start', workers };
  }
  ctx.emit(`start failed: ${gate.reason}`);
  await deleteAll(ctx, target.app);
  if (!before || before.version === target.version) {
    ctx.signal.throwIfAborted();
    await ctx.states.remove(target.app);
    return { status: 'failed', path: 'start', reason: gate.reason, workers: [] };
  }
  await movePointer(ctx, before);
  const reason = `${target.version} did not start: ${gate.reason}`;
  const back = await startApp(processes, settings, before)
    .then(() => healthGate(processes, ctx.channel, gateOptions(settings, before, Date.now())), (err: unknown): GateResult => ({ ok: false, reason: String(err), workers: [] }));
  return back.ok ? rolledBack(ctx, target.app, reason) : notBack(ctx, target.app, reason, before, back.reason);
}

/** Deletes every process of the app (by pm_id: never another app's, never a process hotdeploy did not start). */
async function deleteAll(ctx: ActivationContext, app: string): Promise<void> {
  const procs = await ctx.processes.fresh(app).catch(() => []);
  await ctx.processes.delete(app, procs.map((p) => p.pmId), ctx.settings.killTimeoutMs + 5_000).catch(() => undefined);
}

/** `probe`: the health probe of the release reloaded to (none for the release before, which served already). */
async function reloadAndGate(ctx: ActivationContext, state: AppState, probe?: ProbeSpec): Promise<GateResult> {
  const since = Date.now();
  // PM2 replaces one instance at a time: each may take listen_timeout to be ready, kill_timeout to go.
  const each = ctx.settings.listenTimeoutMs + ctx.settings.killTimeoutMs + 5_000;
  const reloadError = await ctx.processes.fresh(state.app)
    .then((procs) => ctx.processes.reload(state.app, procs.map((p) => p.pmId), each))
    .then(() => scaleTo(ctx, state, each)).then(() => undefined, (err: unknown) => String(err));
  ctx.signal.throwIfAborted();
  if (reloadError) return { ok: false, reason: reloadError, workers: [] };
  return healthGate(ctx.processes, ctx.channel, gateOptions(ctx.settings, state, since, probe));
}

/**
 * The previous release back by a reload; where that fails, its processes are deleted and started
 * afresh. A crash-looping release can leave PM2 unable to reload them at all (PM2 answers "process
 * already started" for a process it is restarting), and processes that fail the gate of a release
 * that served before are worth one fresh start.
 */
async function bringBack(ctx: ActivationContext, before: AppState): Promise<GateResult> {
  const reloaded = await reloadAndGate(ctx, before);
  if (reloaded.ok) return reloaded;
  ctx.emit(`reloading back to ${before.version} failed (${reloaded.reason}); starting its processes afresh`);
  await deleteAll(ctx, before.app);
  ctx.signal.throwIfAborted();
  const since = Date.now();
  return startApp(ctx.processes, ctx.settings, before).then(
    () => healthGate(ctx.processes, ctx.channel, gateOptions(ctx.settings, before, since)),
    (err: unknown): GateResult => ({ ok: false, reason: `${reloaded.reason}; a fresh start failed too: ${String(err)}`, workers: [] }));
}

/** A release may ask for another number of instances: the new ones boot from the pointer too. */
async function scaleTo(ctx: ActivationContext, state: AppState, timeoutMs: number): Promise<void> {
  const procs = await ctx.processes.fresh(state.app);
  const [first] = procs;
  if (first && procs.length < state.instances) await ctx.processes.duplicate(state.app, first.pmId, state.instances - procs.length, timeoutMs);
  if (procs.length > state.instances) await ctx.processes.delete(state.app, procs.slice(state.instances).map((p) => p.pmId), timeoutMs);
}

/** Workers that moved to a release before the fallback found it unbootable go back to `before`. */
async function swapBack(ctx: ActivationContext, before: AppState, pmIds: number[]): Promise<GateResult | undefined> {
  if (pmIds.length === 0) return undefined;
  ctx.emit(`swapping ${pmIds.length} worker(s) back to ${before.version}`);
  const back = await Promise.all(pmIds.map((pmId) =>
    ctx.channel.request(pmId, { kind: 'update', version: before.version, releaseDir: before.releaseDir }, ctx.settings.updateTimeoutMs)
      .then((r) => r.kind === 'updated' && (r.result.outcome === 'hot' || r.result.outcome === 'unchanged'), () => false)));
  // The pointer still names `before`, which is known to boot: a reload is safe here.
  return back.every(Boolean) ? undefined : bringBack(ctx, before);
}

/**
 * What each worker serves once a release went back. Workers that have just been reloaded may be busy
 * booting under load, so the report waits longer for their answer than a status query does.
 */
export const REPORT_PING_MS = 5_000;

async function rolledBack(ctx: ActivationContext, app: string, reason: string, path: 'hot' | 'reload' = 'reload'): Promise<ActivationResult> {
  const live = await liveWorkers(ctx.processes, ctx.channel, app, REPORT_PING_MS).catch(() => [] as LiveWorker[]);
  const workers = live.map((w) => workerReport({ host: ctx.settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: 'rolled-back', durationMs: Date.now() - ctx.started, reason }));
  return { status: 'rolled-back', path, reason, workers };
}

/** The previous release was asked back and did not come: the host is failed, not rolled back. */
async function notBack(ctx: ActivationContext, app: string, reason: string, before: AppState, why: string): Promise<ActivationResult> {
  const full = `${reason}; the previous release ${before.version} did not come back either: ${why}`;
  const live = await liveWorkers(ctx.processes, ctx.channel, app, REPORT_PING_MS).catch(() => [] as LiveWorker[]);
  const workers = live.map((w) => workerReport({ host: ctx.settings.host, pmId: w.pmId, pid: w.pid, version: w.version, outcome: 'failed', durationMs: Date.now() - ctx.started, reason: full }));
  return { status: 'failed', path: 'reload', reason: full, workers };
}

export function gateOptions(settings: ActivationSettings, state: AppState, since: number, probe?: ProbeSpec): GateOptions {
  return { app: state.app, version: state.version, instances: state.instances, since, settleMs: settings.settleMs,
    deadlineMs: settings.listenTimeoutMs + settings.killTimeoutMs + (probe?.timeoutMs ?? 0), ...(probe ? { probe } : {}) };
}

/** A worker's line in an activation's result; `reason` and `update` only where there is one. */
export function workerReport(fields: WorkerReport): WorkerReport {
  const { reason, update, ...rest } = fields;
  return { ...rest, ...(reason ? { reason } : {}), ...(update ? { update } : {}) };
}

/** One worker's answer that was not hot, in the reason: which worker (and process, when it was stuck) and why. */
export function describeOffer(offer: Offer): string {
  const pid = 'hung' in offer && offer.hung ? ` (pid ${offer.hung.pid})` : '';
  return `worker ${offer.proc.pmId}${pid}: ${'result' in offer ? describeUpdate(offer.result) : offer.error}`;
}

/** An update's account in one line: the outcome, the propagation chain, the reason or error. */
export function describeUpdate(result: UpdateResult): string {
  const chain = result.chain?.length ? `: ${result.chain.join(' → ')}` : '';
  const why = result.reason ?? result.error?.message;
  return `${result.outcome}${chain}${why ? ` (${why})` : ''}`;
}

