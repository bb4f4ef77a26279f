import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ActivationRequest, ActivationResult, AgentEvent, DeploymentPhase, HealthWindowEvent, HostObservation, HostPlan, PlanningAgent, WatchedAgent, WorkerOutcome, WorkerReport, WorkerState } from '../messages.js';
import { builtScript } from '../common/package-files.js';
import { KeyedQueue } from '../common/serial-queue.js';
import { isHotError } from '../errors.js';
import { activation, startApp } from './activation.js';
import type { ActivationSettings } from './activation.js';
import { adoptLegacy } from './adopt.js';
import { canaryActivation } from './canary.js';
import { inCanaryWatch } from './canary-watch.js';
import { WorkerChannel } from './channel.js';
import type { WindowMessage } from './channel.js';
import { Pm2Client } from './client.js';
import { inspectDaemon, legacyHome } from './daemon.js';
import { baseEnv, checkPassEnv, passedEnv } from './environment.js';
import { liveWorkers } from './health.js';
import { pm2Name } from './names.js';
import { planActivation } from './plan.js';
import { defaultLogger } from './logger.js';
import type { AgentLogger } from './logger.js';
import { ProcessTable } from './process-table.js';
import { WorkerLinks, linkSocketPath } from './worker-links.js';
import { AppStates } from './state.js';

export interface Pm2AgentOptions {
  /** The data directory; the agent keeps its per-app pointers under `<dataDir>/agent/apps/`. */
  dataDir: string;
  host?: string;
  logger?: AgentLogger;
  /**
   * The PM2 daemon's home. Default `<dataDir>/pm2`: a daemon hotdeploy starts itself, with the clean
   * environment apps get (environment.ts); but when the daemon of `PM2_HOME` (else `~/.pm2`) still
   * runs this data directory's apps (an earlier version started them there), that one, with a
   * warning. A daemon already running in the home is used as it is, with a warning when its
   * environment holds more than the base (its apps inherit it).
   */
  pm2Home?: string;
  /** Names of the agent's environment variables passed on to every app (beside the base). */
  passEnv?: string[];
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

export interface Pm2Agent extends PlanningAgent, WatchedAgent {
  readonly client: Pm2Client;
  /** Resolves once connected to a daemon and the apps of the agent's state are running. */
  ready(): Promise<void>;
}

type Settings = ActivationSettings & { autoReconnect: boolean; logger: AgentLogger };

/** The host agent for the local PM2 daemon: hot swap first, checked graceful reload second. */
export function createPm2Agent(options: Pm2AgentOptions): Pm2Agent {
  const dataDir = path.resolve(options.dataDir);
  const passEnv = checkPassEnv(options.passEnv ?? []);
  const settings: Settings = {
    dataDir,
    agentSocket: linkSocketPath(dataDir),
    host: options.host ?? os.hostname(),
    logger: options.logger ?? defaultLogger(),
    bootstrap: options.bootstrap ?? defaultBootstrap(),
    appEnv: { ...baseEnv(process.env), ...passedEnv(process.env, passEnv) },
    listenTimeoutMs: options.listenTimeoutMs ?? 10_000,
    killTimeoutMs: options.killTimeoutMs ?? 5_000,
    updateTimeoutMs: options.updateTimeoutMs ?? 10_000,
    trialTimeoutMs: options.trialTimeoutMs ?? 10_000,
    settleMs: options.settleMs ?? 600,
    autoReconnect: options.autoReconnect ?? true,
  };
  const legacy = options.pm2Home === undefined ? legacyHome(dataDir) : undefined;
  const home = path.resolve(options.pm2Home ?? legacy ?? path.join(dataDir, 'pm2'));
  // A daemon it has to start gets the base environment only (Pm2Client's default).
  const client = new Pm2Client({ home });
  const links = new WorkerLinks(settings.agentSocket, (message, pmId) => channel.onPacket(message, pmId));
  const channel = new WorkerChannel(client, links);
  const processes = new ProcessTable(client, dataDir);
  const states = new AppStates(settings.dataDir);
  const lastOutcomes = new Map<string, Map<number, WorkerOutcome>>();
  const windowListeners = new Set<(event: HealthWindowEvent) => void>();
  const locks = new KeyedQueue();
  const reconnectListeners = new Set<(hosts: string[]) => void>();
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

  if (legacy) {
    log.warn({ event: 'pm2-legacy-home', home: legacy }, `this data directory's apps still run under the PM2 daemon of ${legacy}, `
      + `where an earlier hotdeploy started them: driving that daemon (--pm2-home ${legacy}). To move them to a daemon of hotdeploy's own `
      + `(${path.join(dataDir, 'pm2')}), stop hotdeploy, delete them there (PM2_HOME=${legacy} pm2 delete <name>) and start hotdeploy again`);
  }

  // A daemon hotdeploy did not start hands its own environment to every app it runs.
  client.on('connected', () => {
    if (client.startedDaemon) return;
    const daemon = inspectDaemon(home, passEnv);
    if (!daemon || (daemon.ours && daemon.foreign?.length === 0)) return;
    const names = daemon.foreign === undefined ? 'its environment cannot be read' : `names beyond hotdeploy's base: ${daemon.foreign.join(', ') || 'none'}`;
    log.warn({ event: 'pm2-foreign-daemon', home, pid: daemon.pid, ours: daemon.ours, foreign: daemon.foreign },
      `the PM2 daemon of ${home} was not started by hotdeploy with a clean environment: apps inherit its environment (${names})`);
  });

  /** One activation (or resurrect) per app at a time; other apps proceed in parallel. */
  function withLock<T>(app: string, run: () => Promise<T>): Promise<T> {
    return locks.run(app, run);
  }

  /**
   * Brings back every app of the agent's pointers that the daemon does not run (new or restarted
   * daemon), takes over processes an earlier version started under the app's bare name, and offers
   * the running workers their direct links.
   */
  async function resurrect(): Promise<void> {
    for (const { app } of await states.list()) {
      await withLock(app, async () => {
        // Read under the lock: an activation that just ended may have moved the pointer.
        const state = await states.read(app);
        if (!state) return;
        const procs = await processes.fresh(app);
        if (procs.length === 0) {
          log.info({ event: 'resurrect', app, version: state.version }, 'restarting app under PM2');
          await startApp(processes, settings, state);
          return;
        }
        if (procs.some((p) => p.name !== pm2Name(app))) await adoptLegacy({ processes, channel, settings, log }, state, procs);
        await liveWorkers(processes, channel, app).catch(() => undefined);
      });
    }
  }

  /**
   * A worker's health window ended. The app it names is its own word: the report counts only when
   * that app's processes include the sender (same pm_id and pid), so no app speaks for another.
   */
  async function windowEnded(message: WindowMessage, pmId: number): Promise<void> {
    // Asked before any await: a canary's watch ends (and forgets its workers) as soon as it sees a trip.
    const canary = inCanaryWatch(channel, pmId, message.pid, message.version);
    const own = await processes.fresh(message.app).catch(() => []);
    if (!own.some((p) => p.pmId === pmId && p.pid === message.pid)) return;
    const { report } = message;
    const event: HealthWindowEvent = { host: settings.host, app: message.app, version: message.version, pmId, pid: message.pid, at: new Date().toISOString(), report, ...(canary ? { canary } : {}) };
    const fields = { event: 'health-window', app: event.app, version: event.version, pmId, tripped: report.tripped, requests: report.requests, errors5xx: report.errors5xx, exceptions: report.exceptions };
    if (report.tripped) log.warn({ ...fields, sample: report.sample }, 'health window tripped');
    else log.info(fields, 'health window passed');
    for (const listener of windowListeners) listener(event);
  }
  channel.onWindow((message, pmId) => void windowEnded(message, pmId));

  function onHealthWindow(listener: (event: HealthWindowEvent) => void): () => void {
    windowListeners.add(listener);
    return () => windowListeners.delete(listener);
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
      // A removed PM2 home means the daemon was retired on purpose (a test's teardown, an uninstall):
      // connecting would start a new daemon there, orphaned.
      if (!existsSync(client.home)) {
        log.warn({ event: 'pm2-home-gone', home: client.home }, 'PM2 home is gone; not reconnecting');
        return;
      }
      ready().then(
        () => {
          log.info({ event: 'pm2-reconnected' }, 'reconnected to a PM2 daemon, apps restored');
          for (const listener of reconnectListeners) listener([settings.host]);
        },
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
      const phase = (p: DeploymentPhase): void =>
        onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: 'phase', message: `${p.name} ${p.status}`, phase: p });
      const result = await guarded(request, emit, phase);
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
  async function guarded(request: ActivationRequest, emit: (message: string) => void, phase: (p: DeploymentPhase) => void): Promise<ActivationResult> {
    const snapshot = await states.read(request.app);
    const abort = new AbortController();
    let running: Promise<ActivationResult> | undefined;
    try {
      await client.connect();
      const ctx = { channel, processes, states, settings, emit, phase, signal: abort.signal, started: Date.now() };
      running = request.canary ? canaryActivation(ctx, { ...request, canary: request.canary }, snapshot) : activation(ctx, request, snapshot);
      return await Promise.race([running, client.lost]);
    } catch (err) {
      abort.abort(err);
      const message = err instanceof Error ? err.message : String(err);
      const reason = isHotError(err, 'HOT_ERR_PM2_DOWN') ? `PM2 daemon unavailable: ${message}`
        : isHotError(err, 'HOT_ERR_TIMEOUT') ? `PM2 did not answer in time: ${message}` : `activation error: ${message}`;
      emit(reason);
      // The abandoned activation stops at its next checkpoint; only then is the pointer restored
      // (or removed: an app's first release the service never made current must not be resurrected).
      if (running) await Promise.race([running.catch(() => undefined), delay(5_000, undefined, { ref: false })]);
      if (snapshot) await states.write(snapshot);
      else await states.remove(request.app);
      return { status: 'failed', path: 'none', reason, workers: [] };
    }
  }

  /** The prepare phase of a cluster deploy, under the app's lock so it never races an activation. */
  function plan(request: ActivationRequest): Promise<HostPlan> {
    return withLock(request.app, async () => {
      await client.connect();
      return planActivation({ channel, processes, states, host: settings.host, updateTimeoutMs: settings.updateTimeoutMs }, request);
    });
  }

  async function workers(app: string): Promise<WorkerState[]> {
    await client.connect();
    const outcomes = lastOutcomes.get(app);
    return (await liveWorkers(processes, channel, app)).map((w) => ({
      host: settings.host, pmId: w.pmId, pid: w.pid, version: w.version, status: w.status, stats: w.stats,
      ...(outcomes?.has(w.pmId) ? { lastOutcome: outcomes.get(w.pmId) } : {}), ...(w.releases ? { releases: w.releases } : {}),
    }));
  }

  /** The pointer and the workers, under the app's lock: never in the middle of an activation. */
  async function observe(app: string): Promise<HostObservation[]> {
    // Connecting after close would start a daemon nobody stops.
    if (closed) throw new Error('the PM2 agent is closed');
    await ready();
    return withLock(app, async () => {
      const state = await states.read(app);
      return [{ host: settings.host, pointer: state?.version ?? null, workers: await workers(app) }];
    });
  }

  function onReconnect(listener: (hosts: string[]) => void): () => void {
    reconnectListeners.add(listener);
    return () => reconnectListeners.delete(listener);
  }

  async function close(): Promise<void> {
    closed = true;
    clearTimeout(reconnectTimer);
    await locks.idle();
    await listening;
    await links.close();
    await client.disconnect();
  }

  // Workers started with the socket's path connect as soon as it listens; until then PM2 carries all.
  const listening = links.listen().catch((err: unknown) => {
    log.warn({ event: 'worker-links-failed', socket: settings.agentSocket, err: String(err) }, 'workers will be reached through PM2 only');
  });

  // Connect and restore the apps in the background; an activation connects on its own if needed.
  ready().catch((err: unknown) => {
    log.warn({ event: 'pm2-connect-failed', err: String(err) }, 'could not reach PM2 yet');
    if (settings.autoReconnect && !closed) scheduleReconnect(1_000);
  });

  return { host: settings.host, client, ready, activate, plan, workers, observe, onReconnect, close, onHealthWindow };
}

function defaultBootstrap(): string {
  return builtScript('agent/worker/bootstrap.js');
}
