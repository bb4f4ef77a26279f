import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ActivationRequest, ActivationResult, AgentEvent, HostAgent, UpdateResult, WorkerOutcome, WorkerReport, WorkerState } from '../messages.js';
import { isHotError } from '../errors.js';
import { WorkerChannel } from './channel.js';
import { Pm2Client, withDeadline } from './client.js';
import { healthGate, liveWorkers } from './health.js';
import type { LiveWorker } from './health.js';
import { defaultLogger } from './logger.js';
import type { AgentLogger } from './logger.js';
import { listStates, readState, stateFile, writeState } from './state.js';
import type { AppState } from './state.js';
import { trialStart } from './trial.js';

export interface Pm2AgentOptions {
  /** The data directory; the agent keeps its per-app pointers under `<dataDir>/agent/apps/`. */
  dataDir: string;
  host?: string;
  logger?: AgentLogger;
  /** Defaults to `PM2_HOME`, else `~/.pm2` (PM2's own rule). */
  pm2Home?: string;
  /** The worker bootstrap; defaults to the built `dist/agent/worker/bootstrap.js`. */
  bootstrap?: string;
  listenTimeoutMs?: number;
  killTimeoutMs?: number;
  updateTimeoutMs?: number;
  trialTimeoutMs?: number;
  settleMs?: number;
  /** After the daemon dies: reconnect (starting a daemon) and bring the apps back. Default true. */
  autoReconnect?: boolean;
}

export interface Pm2Agent extends HostAgent {
  readonly client: Pm2Client;
  /** Resolves once connected to a daemon and the apps of the agent's state are running. */
  ready(): Promise<void>;
}

type Settings = Required<Omit<Pm2AgentOptions, 'logger' | 'pm2Home' | 'host'>> & { host: string; logger: AgentLogger };

const DEFAULT_INSTANCES = 2;

/** The host agent for the local PM2 daemon (issue 4): hot swap first, checked graceful reload second. */
export function createPm2Agent(options: Pm2AgentOptions): Pm2Agent {
  const settings: Settings = {
    dataDir: path.resolve(options.dataDir),
    host: options.host ?? os.hostname(),
    logger: options.logger ?? defaultLogger(),
    bootstrap: options.bootstrap ?? defaultBootstrap(),
    listenTimeoutMs: options.listenTimeoutMs ?? 10_000,
    killTimeoutMs: options.killTimeoutMs ?? 5_000,
    updateTimeoutMs: options.updateTimeoutMs ?? 10_000,
    trialTimeoutMs: options.trialTimeoutMs ?? 10_000,
    settleMs: options.settleMs ?? 600,
    autoReconnect: options.autoReconnect ?? true,
  };
  const client = new Pm2Client({ home: options.pm2Home });
  const channel = new WorkerChannel(client);
  const lastOutcomes = new Map<string, Map<number, WorkerOutcome>>();
  const locks = new Map<string, Promise<unknown>>();
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let readyPromise: Promise<void> | undefined;
  const log = settings.logger;

  const ready = (): Promise<void> => {
    readyPromise ??= (async () => {
      await client.connect();
      await resurrect();
    })().catch((err: unknown) => { readyPromise = undefined; throw err; });
    return readyPromise;
  };

  /** One activation (or resurrect) per app at a time; other apps proceed in parallel. */
  function withLock<T>(app: string, run: () => Promise<T>): Promise<T> {
    const next = (locks.get(app) ?? Promise.resolve()).catch(() => undefined).then(run);
    locks.set(app, next);
    return next;
  }

  /** Brings back every app of the agent's pointers that the daemon does not run (new or restarted daemon). */
  async function resurrect(): Promise<void> {
    for (const { app } of await listStates(settings.dataDir)) {
      await withLock(app, async () => {
        // Read under the lock: an activation that just ended may have moved the pointer.
        const state = await readState(settings.dataDir, app);
        if (!state || (await client.describe(app)).length > 0) return;
        log.info({ event: 'resurrect', app, version: state.version }, 'restarting app under PM2');
        await startApp(client, settings, state);
      });
    }
  }

  client.on('lost', (reason: string) => {
    log.warn({ event: 'pm2-lost', reason }, 'lost the PM2 daemon');
    readyPromise = undefined;
    if (settings.autoReconnect && !closed) scheduleReconnect(500);
  });

  function scheduleReconnect(delayMs: number): void {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      if (closed) return;
      ready().then(
        () => log.info({ event: 'pm2-reconnected' }, 'reconnected to a PM2 daemon, apps restored'),
        (err: unknown) => {
          log.warn({ event: 'pm2-reconnect-failed', err: String(err) }, 'PM2 reconnect failed, retrying');
          scheduleReconnect(Math.min(delayMs * 2, 5_000));
        });
    }, delayMs);
    reconnectTimer.unref();
  }

  function remember(app: string, reports: WorkerReport[]): void {
    lastOutcomes.set(app, new Map(reports.map((r) => [r.pmId, r.outcome])));
  }

  function activate(request: ActivationRequest, onEvent?: (event: AgentEvent) => void): Promise<ActivationResult> {
    return withLock(request.app, async () => {
      const emit = (message: string, worker?: WorkerReport): void =>
        onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: worker ? 'worker' : 'phase', message, ...(worker ? { worker } : {}) });
      const fields = { app: request.app, version: request.version, deploymentId: request.deploymentId };
      log.info({ event: 'activate', ...fields, kind: request.kind }, 'activation started');
      const result = await guarded(request, emit);
      remember(request.app, result.workers);
      for (const worker of result.workers) emit(`worker ${worker.pmId}: ${worker.outcome}`, worker);
      log.info({ event: 'activated', ...fields, status: result.status, path: result.path, reason: result.reason }, 'activation ended');
      return result;
    });
  }

  /**
   * Runs one activation, failing it clearly when PM2 is unreachable or dies under it. Then the
   * agent's pointer goes back to what the workers ran before, so the resurrect that follows a
   * daemon's death brings back the release the service still calls current.
   */
  async function guarded(request: ActivationRequest, emit: (message: string) => void): Promise<ActivationResult> {
    const snapshot = await readState(settings.dataDir, request.app);
    let running: Promise<ActivationResult> | undefined;
    try {
      await client.connect();
      running = activation(client, channel, settings, request, emit);
      return await Promise.race([running, client.lost]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const reason = isHotError(err, 'HOT_ERR_PM2_DOWN') || isHotError(err, 'HOT_ERR_TIMEOUT') ? `PM2 daemon unavailable: ${message}` : `activation error: ${message}`;
      emit(reason);
      // The abandoned activation fails fast on its next PM2 call; let it stop before restoring.
      if (running) await withDeadline(running.catch(() => undefined), 5_000, 'abandoned activation').catch(() => undefined);
      if (snapshot) await writeState(settings.dataDir, snapshot);
      return { status: 'failed', path: 'none', reason, workers: [] };
    }
  }

  async function workers(app: string): Promise<WorkerState[]> {
    await client.connect();
    const outcomes = lastOutcomes.get(app);
    return (await liveWorkers(client, channel, app)).map((w) => ({
      host: settings.host, pmId: w.pmId, pid: w.pid, version: w.version, status: w.status,
      ...(outcomes?.has(w.pmId) ? { lastOutcome: outcomes.get(w.pmId) } : {}),
    }));
  }

  async function close(): Promise<void> {
    closed = true;
    clearTimeout(reconnectTimer);
    await Promise.allSettled([...locks.values()]);
    await client.disconnect();
  }

  // Connect (and restore the apps) in the background; activations await the same promise.
  ready().catch((err: unknown) => {
    log.warn({ event: 'pm2-connect-failed', err: String(err) }, 'could not reach PM2 yet');
    if (settings.autoReconnect && !closed) scheduleReconnect(1_000);
  });

  return { host: settings.host, client, ready, activate, workers, close };
}

function startApp(client: Pm2Client, settings: Settings, state: AppState): Promise<void> {
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
    },
    listenTimeoutMs: settings.listenTimeoutMs,
    killTimeoutMs: settings.killTimeoutMs,
  });
}

function targetState(request: ActivationRequest): AppState {
  const { manifest } = request;
  return {
    app: request.app,
    version: request.version,
    releaseDir: request.releaseDir,
    instances: manifest.instances ?? DEFAULT_INSTANCES,
    env: { ...manifest.env, ...(manifest.port === undefined ? {} : { PORT: String(manifest.port) }) },
  };
}

/**
 * The activation algorithm. First activation: start under PM2 and gate. Later ones: offer the update
 * to every worker; all `hot`/`unchanged` ends there. Otherwise fall back: trial-start the release
 * (nothing is touched if it cannot boot, and workers that already swapped are swapped back), point
 * the agent's state at it, `pm2 reload`, then gate; a failed gate points back and reloads.
 */
async function activation(client: Pm2Client, channel: WorkerChannel, settings: Settings, request: ActivationRequest, emit: (message: string) => void): Promise<ActivationResult> {
  const started = Date.now();
  const target = targetState(request);
  const running = await readState(settings.dataDir, request.app);
  const before: AppState | undefined = running
    ?? (request.previous ? { ...target, version: request.previous.version, releaseDir: request.previous.releaseDir } : undefined);
  const procs = await client.describe(request.app);

  if (procs.length === 0) return firstStart(client, channel, settings, target, before, emit, started);

  emit(`offering ${request.version} to ${procs.length} worker(s)`);
  const offers = await Promise.all(procs.map(async (p) => {
    const t0 = Date.now();
    if (p.status !== 'online') return { proc: p, error: `worker is ${p.status}`, durationMs: 0 };
    try {
      const reply = await channel.request(p.pmId, { kind: 'update', version: target.version, releaseDir: target.releaseDir }, settings.updateTimeoutMs);
      return { proc: p, reply, durationMs: Date.now() - t0 };
    } catch (err) {
      return { proc: p, error: (err as Error).message, durationMs: Date.now() - t0 };
    }
  }));
  const accepted = (o: (typeof offers)[number]): boolean =>
    o.reply?.kind === 'updated' && (o.reply.result.outcome === 'hot' || o.reply.result.outcome === 'unchanged');

  if (offers.every(accepted) && procs.length >= target.instances) {
    await writeState(settings.dataDir, target);
    const workers = offers.map((o) => report(settings.host, o.proc.pmId, o.reply?.pid ?? o.proc.pid, target.version,
      o.reply?.kind === 'updated' && o.reply.result.outcome === 'unchanged' ? 'unchanged' : 'hot', o.durationMs, undefined,
      o.reply?.kind === 'updated' ? o.reply.result : undefined));
    return { status: 'succeeded', path: 'hot', workers };
  }

  const why = offers.filter((o) => !accepted(o)).map((o) => `worker ${o.proc.pmId}: ${o.reply?.kind === 'updated' ? describeUpdate(o.reply.result) : o.error ?? 'no answer'}`);
  if (procs.length < target.instances) why.push(`${procs.length} of ${target.instances} instances running`);
  const fallback = why.join('; ');
  emit(`falling back to a graceful reload: ${fallback}`);

  const trial = await trialStart({ bootstrap: settings.bootstrap, app: target.app, version: target.version, releaseDir: target.releaseDir, env: target.env, timeoutMs: settings.trialTimeoutMs });
  if (!trial.ok) {
    emit(`trial start failed: ${trial.reason}`);
    const cause = `${target.version} did not start in a trial run (${trial.reason}); nothing was reloaded`;
    const swapped = offers.filter((o) => o.reply?.kind === 'updated' && o.reply.result.outcome === 'hot');
    if (before) await swapBack(client, channel, settings, before, swapped.map((o) => o.proc.pmId), emit);
    return rolledBack(client, channel, settings, request.app, `${cause}; fallback was needed because ${fallback}`, started);
  }
  emit(`trial start ready in ${trial.durationMs} ms; reloading`);

  await writeState(settings.dataDir, target);
  const since = Date.now();
  const reloadError = await reload(client, settings, target).then(() => undefined, (err: unknown) => String(err));
  const gate = reloadError ? { ok: false as const, reason: reloadError, workers: [] }
    : await healthGate(client, channel, gateOptions(settings, target, since));
  if (gate.ok) {
    const workers = gate.workers.map((w) => report(settings.host, w.pmId, w.pid, w.version, 'reloaded', Date.now() - started, fallback));
    return { status: 'succeeded', path: 'reload', reason: fallback, workers };
  }

  emit(`health gate failed: ${gate.reason}`);
  if (!before) return { status: 'failed', path: 'reload', reason: `${gate.reason}; no previous release to go back to`, workers: [] };
  await writeState(settings.dataDir, before);
  await reload(client, settings, before).catch(() => undefined);
  await healthGate(client, channel, gateOptions(settings, before, Date.now()));
  return rolledBack(client, channel, settings, request.app, `${target.version} did not come up after the reload: ${gate.reason}`, started);
}

async function firstStart(client: Pm2Client, channel: WorkerChannel, settings: Settings, target: AppState, before: AppState | undefined, emit: (message: string) => void, started: number): Promise<ActivationResult> {
  emit(`starting ${target.app}@${target.version} under PM2 (${target.instances} instance(s))`);
  await writeState(settings.dataDir, target);
  const since = Date.now();
  const startError = await startApp(client, settings, target).then(() => undefined, (err: unknown) => String(err));
  const gate = startError ? { ok: false as const, reason: startError, workers: [] }
    : await healthGate(client, channel, gateOptions(settings, target, since));
  if (gate.ok) {
    const workers = gate.workers.map((w) => report(settings.host, w.pmId, w.pid, w.version, 'started', Date.now() - started));
    return { status: 'succeeded', path: 'start', workers };
  }
  emit(`start failed: ${gate.reason}`);
  await client.delete(target.app).catch(() => undefined);
  if (!before || before.version === target.version) {
    return { status: 'failed', path: 'start', reason: gate.reason, workers: [] };
  }
  await writeState(settings.dataDir, before);
  await startApp(client, settings, before).catch(() => undefined);
  await healthGate(client, channel, gateOptions(settings, before, Date.now()));
  return rolledBack(client, channel, settings, target.app, `${target.version} did not start: ${gate.reason}`, started);
}

/** Workers that took a release hot before the fallback found it unbootable go back to `before`. */
async function swapBack(client: Pm2Client, channel: WorkerChannel, settings: Settings, before: AppState, pmIds: number[], emit: (message: string) => void): Promise<void> {
  if (pmIds.length === 0) return;
  emit(`swapping ${pmIds.length} worker(s) back to ${before.version}`);
  const back = await Promise.all(pmIds.map((pmId) =>
    channel.request(pmId, { kind: 'update', version: before.version, releaseDir: before.releaseDir }, settings.updateTimeoutMs)
      .then((r) => r.kind === 'updated' && (r.result.outcome === 'hot' || r.result.outcome === 'unchanged'), () => false)));
  // The state file still names `before`, which is known to boot: a reload is safe here.
  if (back.some((ok) => !ok)) await reload(client, settings, before).catch(() => undefined);
}

async function rolledBack(client: Pm2Client, channel: WorkerChannel, settings: Settings, app: string, reason: string, started: number): Promise<ActivationResult> {
  const live = await liveWorkers(client, channel, app).catch(() => [] as LiveWorker[]);
  const workers = live.map((w) => report(settings.host, w.pmId, w.pid, w.version, 'rolled-back', Date.now() - started, reason));
  return { status: 'rolled-back', path: 'reload', reason, workers };
}

function reload(client: Pm2Client, settings: Settings, state: AppState): Promise<void> {
  // PM2 replaces one instance at a time: each may take listen_timeout to be ready, kill_timeout to go.
  return client.reload(state.app, state.instances * (settings.listenTimeoutMs + settings.killTimeoutMs) + 5_000);
}

function gateOptions(settings: Settings, state: AppState, since: number): Parameters<typeof healthGate>[2] {
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

/** `dist/agent/worker/bootstrap.js`, also when this module runs from source (tests on .ts files). */
function defaultBootstrap(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, '..', 'worker', 'bootstrap.js');
  if (existsSync(sibling)) return sibling;
  return path.resolve(here, '..', '..', 'dist', 'agent', 'worker', 'bootstrap.js');
}
