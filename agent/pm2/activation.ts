import type { ActivationRequest, ActivationResult, UpdateResult, UpdateTiming, WorkerOutcome, WorkerReport } from '../messages.js';
import type { WorkerChannel } from './channel.js';
import type { Pm2Client, Pm2Process } from './client.js';
import { healthGate, liveWorkers } from './health.js';
import type { GateOptions, LiveWorker } from './health.js';
import type { ProcessTable } from './process-table.js';
import { preciseNow } from './protocol.js';
import { sameEnv, stateFile } from './state.js';
import type { AppState, AppStates } from './state.js';
import { trialStart } from './trial.js';

export interface ActivationSettings {
  dataDir: string;
  /** Where workers connect to the agent directly (worker-links.ts); undefined: through PM2 only. */
  agentSocket: string | undefined;
  host: string;
  bootstrap: string;
  listenTimeoutMs: number;
  killTimeoutMs: number;
  updateTimeoutMs: number;
  trialTimeoutMs: number;
  settleMs: number;
}

/** What one activation works with. `signal` aborts it when the agent gave up on it (daemon lost). */
export interface ActivationContext {
  client: Pm2Client;
  channel: WorkerChannel;
  /** The app's processes, kept current from PM2's bus (no daemon round trip per deploy). */
  processes: ProcessTable;
  /** The agent's pointers, kept in memory and written through. */
  states: AppStates;
  settings: ActivationSettings;
  emit: (message: string) => void;
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

export function startApp(client: Pm2Client, settings: ActivationSettings, state: AppState): Promise<void> {
  return client.start({
    name: state.app,
    script: settings.bootstrap,
    // A directory that never changes: the bootstrap moves cwd to the release it hosts.
    cwd: settings.dataDir,
    instances: state.instances,
    env: {
      ...state.env,
      HOTDEPLOY_APP: state.app,
      HOTDEPLOY_STATE_FILE: stateFile(settings.dataDir, state.app),
      HOTDEPLOY_KILL_TIMEOUT_MS: String(settings.killTimeoutMs),
      ...(settings.agentSocket ? { HOTDEPLOY_AGENT_SOCKET: settings.agentSocket } : {}),
    },
    listenTimeoutMs: settings.listenTimeoutMs,
    killTimeoutMs: settings.killTimeoutMs,
  });
}

/** Moves the agent's pointer, unless the activation was abandoned (its caller restores the pointer). */
async function point(ctx: ActivationContext, state: AppState): Promise<void> {
  ctx.signal.throwIfAborted();
  await ctx.states.write(state);
}

type Offer = { proc: Pm2Process; durationMs: number } & ({ result: UpdateResult; pid: number; timing?: UpdateTiming } | { error: string });

function accepted(offer: Offer): boolean {
  return 'result' in offer && (offer.result.outcome === 'hot' || offer.result.outcome === 'unchanged');
}

/** Sends the update to every worker and collects the answers; a worker that is down or silent is an answer too. */
async function offer(ctx: ActivationContext, procs: Pm2Process[], target: AppState): Promise<Offer[]> {
  // Every request is on its way (a worker's link or the daemon's socket) before anything else: the event, its log line.
  const pending = Promise.all(procs.map(async (proc): Promise<Offer> => {
    const t0 = Date.now();
    if (proc.status !== 'online') return { proc, error: `worker is ${proc.status}`, durationMs: 0 };
    try {
      const sentAt = preciseNow();
      const reply = await ctx.channel.request(proc.pmId, { kind: 'update', version: target.version, releaseDir: target.releaseDir }, ctx.settings.updateTimeoutMs, proc.pid);
      if (reply.kind !== 'updated') return { proc, error: `unexpected answer ${reply.kind}`, durationMs: Date.now() - t0 };
      const timing = reply.receivedAt !== undefined && reply.answeredAt !== undefined ? { sentAt, receivedAt: reply.receivedAt, answeredAt: reply.answeredAt } : undefined;
      return { proc, result: reply.result, pid: reply.pid, durationMs: Date.now() - t0, ...(timing ? { timing } : {}) };
    } catch (err) {
      return { proc, error: (err as Error).message, durationMs: Date.now() - t0 };
    }
  }));
  ctx.emit(`offering ${target.version} to ${procs.length} worker(s)`);
  const offers = await pending;
  ctx.signal.throwIfAborted();
  return offers;
}

/**
 * The activation algorithm. First activation: start under PM2, then the health gate. Later ones:
 * offer the update to every worker; all `hot`/`unchanged` ends there. Otherwise fall back: trial-start
 * the release (if it cannot boot nothing is reloaded, and workers that already swapped are swapped
 * back), point the agent's state at it, `pm2 reload`, then the gate; a failed gate points back and
 * reloads the previous release.
 */
export async function activation(ctx: ActivationContext, request: ActivationRequest, running: AppState | undefined): Promise<ActivationResult> {
  const { settings } = ctx;
  const target = targetState(request);
  const before: AppState | undefined = running
    ?? (request.previous ? { ...target, version: request.previous.version, releaseDir: request.previous.releaseDir } : undefined);
  const procs = await ctx.processes.processes(request.app);
  if (procs.length === 0) return firstStart(ctx, target, before);

  // A process's environment (and so its port) is fixed at its start: only a reload can change it.
  const envChanged = running !== undefined && !sameEnv(running.env, target.env);
  // issue 7: a cluster deploy whose dry run found this host cannot go hot, or `--strategy reload-all`.
  const reloadAsked = request.strategy === 'reload';
  const offers = envChanged || reloadAsked ? [] : await offer(ctx, procs, target);
  if (!envChanged && !reloadAsked && offers.every(accepted) && procs.length === target.instances) {
    await point(ctx, target);
    const workers = offers.map((o) => 'result' in o
      ? { ...report(settings.host, o.proc.pmId, o.pid, target.version, o.result.outcome === 'unchanged' ? 'unchanged' : 'hot', o.durationMs, undefined, o.result), ...(o.timing ? { timing: o.timing } : {}) }
      : report(settings.host, o.proc.pmId, o.proc.pid, null, 'failed', o.durationMs, o.error));
    return { status: 'succeeded', path: 'hot', workers };
  }

  const why = offers.filter((o) => !accepted(o)).map((o) => `worker ${o.proc.pmId}: ${'result' in o ? describeUpdate(o.result) : o.error}`);
  if (envChanged) why.push('the env or port changed');
  if (reloadAsked) why.push('a reload was asked for');
  if (procs.length !== target.instances) why.push(`${procs.length} instance(s) running, ${target.instances} wanted`);
  const fallback = why.join('; ');
  ctx.emit(`falling back to a graceful reload: ${fallback}`);

  const trial = await trialStart({ bootstrap: settings.bootstrap, app: target.app, version: target.version, releaseDir: target.releaseDir,
    env: target.env, timeoutMs: settings.trialTimeoutMs, signal: ctx.signal });
  ctx.signal.throwIfAborted();
  if (!trial.ok) {
    ctx.emit(`trial start failed: ${trial.reason}`);
    // `failed` too: the runtime finishes a failed update on the new release (only the modules that
    // threw are missing), so those workers must be moved back like the ones that took it hot.
    const swapped = offers.filter((o) => 'result' in o && (o.result.outcome === 'hot' || o.result.outcome === 'failed')).map((o) => o.proc.pmId);
    if (before) await swapBack(ctx, before, swapped);
    return rolledBack(ctx, request.app, `${target.version} did not start in a trial run (${trial.reason}); nothing was reloaded; the fallback was needed because ${fallback}`);
  }
  ctx.emit(`trial start ready in ${trial.durationMs} ms; reloading`);

  await point(ctx, target);
  const gate = await reloadAndGate(ctx, target);
  if (gate.ok) {
    const workers = gate.workers.map((w) => report(settings.host, w.pmId, w.pid, w.version, 'reloaded', Date.now() - ctx.started, fallback));
    return { status: 'succeeded', path: 'reload', reason: fallback, workers };
  }
  ctx.emit(`health gate failed: ${gate.reason}`);
  if (!before) return { status: 'failed', path: 'reload', reason: `${gate.reason}; no previous release to go back to`, workers: [] };
  await point(ctx, before);
  await reloadAndGate(ctx, before);
  return rolledBack(ctx, request.app, `${target.version} did not come up after the reload: ${gate.reason}`);
}

async function firstStart(ctx: ActivationContext, target: AppState, before: AppState | undefined): Promise<ActivationResult> {
  const { client, settings } = ctx;
  ctx.emit(`starting ${target.app}@${target.version} under PM2 (${target.instances} instance(s))`);
  await point(ctx, target);
  const since = Date.now();
  const startError = await startApp(client, settings, target).then(() => undefined, (err: unknown) => String(err));
  const gate = startError ? { ok: false as const, reason: startError, workers: [] } : await healthGate(client, ctx.channel, gateOptions(settings, target, since));
  if (gate.ok) {
    const workers = gate.workers.map((w) => report(settings.host, w.pmId, w.pid, w.version, 'started', Date.now() - ctx.started));
    return { status: 'succeeded', path: 'start', workers };
  }
  ctx.emit(`start failed: ${gate.reason}`);
  await client.delete(target.app).catch(() => undefined);
  if (!before || before.version === target.version) {
    ctx.signal.throwIfAborted();
    await ctx.states.remove(target.app);
    return { status: 'failed', path: 'start', reason: gate.reason, workers: [] };
  }
  await point(ctx, before);
  await startApp(client, settings, before).catch(() => undefined);
  await healthGate(client, ctx.channel, gateOptions(settings, before, Date.now()));
  return rolledBack(ctx, target.app, `${target.version} did not start: ${gate.reason}`);
}

async function reloadAndGate(ctx: ActivationContext, state: AppState): ReturnType<typeof healthGate> {
  const since = Date.now();
  // PM2 replaces one instance at a time: each may take listen_timeout to be ready, kill_timeout to go.
  const timeoutMs = state.instances * (ctx.settings.listenTimeoutMs + ctx.settings.killTimeoutMs) + 5_000;
  const reloadError = await ctx.client.reload(state.app, timeoutMs)
    .then(() => scaleTo(ctx, state, timeoutMs)).then(() => undefined, (err: unknown) => String(err));
  ctx.signal.throwIfAborted();
  if (reloadError) return { ok: false, reason: reloadError, workers: [] };
  return healthGate(ctx.client, ctx.channel, gateOptions(ctx.settings, state, since));
}

/** A release may ask for another number of instances: the new ones boot from the pointer too. */
async function scaleTo(ctx: ActivationContext, state: AppState, timeoutMs: number): Promise<void> {
  const count = (await ctx.client.describe(state.app)).length;
  if (count !== state.instances) await ctx.client.scale(state.app, state.instances, timeoutMs);
}

/** Workers that moved to a release before the fallback found it unbootable go back to `before`. */
async function swapBack(ctx: ActivationContext, before: AppState, pmIds: number[]): Promise<void> {
  if (pmIds.length === 0) return;
  ctx.emit(`swapping ${pmIds.length} worker(s) back to ${before.version}`);
  const back = await Promise.all(pmIds.map((pmId) =>
    ctx.channel.request(pmId, { kind: 'update', version: before.version, releaseDir: before.releaseDir }, ctx.settings.updateTimeoutMs)
      .then((r) => r.kind === 'updated' && (r.result.outcome === 'hot' || r.result.outcome === 'unchanged'), () => false)));
  // The pointer still names `before`, which is known to boot: a reload is safe here.
  if (back.some((ok) => !ok)) await reloadAndGate(ctx, before);
}

async function rolledBack(ctx: ActivationContext, app: string, reason: string): Promise<ActivationResult> {
  const live = await liveWorkers(ctx.client, ctx.channel, app).catch(() => [] as LiveWorker[]);
  const workers = live.map((w) => report(ctx.settings.host, w.pmId, w.pid, w.version, 'rolled-back', Date.now() - ctx.started, reason));
  return { status: 'rolled-back', path: 'reload', reason, workers };
}

function gateOptions(settings: ActivationSettings, state: AppState, since: number): GateOptions {
  return { app: state.app, version: state.version, instances: state.instances, since, settleMs: settings.settleMs,
    deadlineMs: settings.listenTimeoutMs + settings.killTimeoutMs };
}

function report(host: string, pmId: number, pid: number | null, version: string | null, outcome: WorkerOutcome, durationMs: number, reason?: string, update?: UpdateResult): WorkerReport {
  return { host, pmId, pid, version, outcome, durationMs, ...(reason ? { reason } : {}), ...(update ? { update } : {}) };
}

/** An update's account in one line: the outcome, the propagation chain, the reason or error. */
export function describeUpdate(result: UpdateResult): string {
  const chain = result.chain?.length ? `: ${result.chain.join(' → ')}` : '';
  const why = result.reason ?? result.error?.message;
  return `${result.outcome}${chain}${why ? ` (${why})` : ''}`;
}
