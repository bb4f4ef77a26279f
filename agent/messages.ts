/**
 * Types shared by the service and the agent side. They live here because the agent never imports
 * `services/` (dependencies point one way); the service imports these.
 */

import type { CanarySize } from './canary-size.js';

export type AppMode = 'handler' | 'process';

/** An unpacked release's settings, as `readManifest` returns them. */
export interface AppManifest {
  name: string | undefined;
  version: string | undefined;
  /** The entry module, relative to the release root with `/` separators (resolved, so it exists). */
  entry: string;
  mode: AppMode;
  /** `"type": "module"` or an `.mjs` entry: updates go through the ES module hooks. */
  esm: boolean;
  /** `hotdeploy.esmRetiredLimit`: retired ES module versions a worker may hold (defaults in the runtime). */
  esmRetiredLimit?: { bytes?: number; versions?: number };
  port: number | undefined;
  instances: number | undefined;
  env: Record<string, string>;
  /**
   * What the entry exports (`hotdeploy.export`, or `fastify-plugin` when the start script runs
   * `fastify start` on the entry); `auto` tells a handler, an app object or a factory by its shape.
   * Absent in manifests stored before the setting existed: `auto`.
   */
  export?: EntryExport;
  /** The `fastify start` options of the app's start script, when it hosts the entry that way. */
  fastify?: FastifyStart;
  /** The health probe and window (`hotdeploy.health`); `false` turns both off. Absent in older manifests: the defaults. */
  health?: HealthSettings | false;
  /** `hotdeploy.canary`: the app's default canary for pushes (`--canary` overrides it; `--canary 0` turns it off). */
  canary?: { size: CanarySize; watchMs?: number };
}

export type EntryExport = 'auto' | 'handler' | 'koa' | 'fastify' | 'fastify-plugin' | 'nest' | 'factory';

/**
 * What `fastify start <file>` would be given by the app's start script: the options hotdeploy
 * honours (agent/runtime/fastify-cli.ts); `FASTIFY_*` variables fill what the script leaves out.
 */
export interface FastifyStart {
  /** The plugin file, relative to the release root. */
  file: string;
  logLevel?: string;
  port?: number;
  /** `-o` / `--options`: the plugin's `options` export becomes server and plugin options. */
  options?: boolean;
  prefix?: string;
  pluginTimeout?: number;
  bodyLimit?: number;
  prettyLogs?: boolean;
  trustProxy?: boolean | string | number;
  /** What follows `--`: options given to the plugin. */
  pluginOptions: Record<string, string | boolean>;
  /** Options of the script hotdeploy does not apply (the worker owns the server, the watcher, the debugger). */
  ignored: string[];
}

/** `hotdeploy.health` with its defaults filled in (agent/manifest.ts). */
export interface HealthSettings {
  /** The probe: a GET of `path` through each worker's own handler, in process. */
  path: string;
  /** Statuses that pass; undefined: any status below 500. */
  expect?: number[];
  timeoutMs: number;
  /** How long after a hot swap each worker counts 5xx answers and uncaught exceptions (0: no window). */
  windowMs: number;
  /** The window trips at this many errors... */
  threshold: number;
  /** ...when they are also at least this fraction of the answers. */
  errorRate: number;
}

/** What the agent asks a worker to probe. */
export interface ProbeSpec {
  path: string;
  expect?: number[];
  timeoutMs: number;
}

/** A worker's probe answer. `skipped` in process mode, where the readiness gate stands instead. */
export interface ProbeResult {
  ok: boolean;
  /** 0 when no answer came (timeout, error). */
  status: number;
  /** The first bytes of the body, as text. */
  bodyStart: string;
  durationMs: number;
  error?: string;
  skipped?: string;
}

export interface WindowSpec {
  windowMs: number;
  threshold: number;
  errorRate: number;
}

/** How a worker's health window ended: tripped past the threshold, or passed when the window closed. */
export interface WindowReport {
  tripped: boolean;
  windowMs: number;
  elapsedMs: number;
  /** Answers the worker's server sent in the window. */
  requests: number;
  errors5xx: number;
  exceptions: number;
  /** The first error seen: `GET /path → 500`, or an exception's located first line. */
  sample?: string;
}

/** webpack's HMR statuses (module.hot.status()). */
export type HotStatus = 'idle' | 'check' | 'prepare' | 'ready' | 'dispose' | 'apply' | 'abort' | 'fail';

/** What one worker's runtime did with one update (`HostedApp.update`). */
export type UpdateOutcome = 'hot' | 'unchanged' | 'declined' | 'unaccepted' | 'failed';

export interface UpdateResult {
  outcome: UpdateOutcome;
  /** Release directories, absolute. */
  from: string;
  to: string;
  /**
   * Changed modules that were loaded, relative to the release root, sorted: content changed or
   * gone, requires that now resolve elsewhere, `invalidate()`d modules, a moved entry.
   */
  outdated: string[];
  /** Every module disposed and evicted (the propagation of `outdated`), sorted. */
  disposed: string[];
  /** The acceptors that took the update: accepting parents, self-accepted modules, the entry when the host re-evaluated it. */
  accepted: string[];
  /** Propagation chain for declined / unaccepted, relative paths, from the changed module up. */
  chain?: string[];
  /** Why it aborted (webpack's message with the chain, `esm`, a non-module file); also set on a whole-app swap. */
  reason?: string;
  error?: { message: string; stack?: string };
  /** The whole update: compare, propagate, dispose, apply (excluding retirement after the drain). */
  durationMs: number;
}

/** How one worker ended a deployment (hot | reloaded | failed | rolled-back). */
export type WorkerOutcome = 'hot' | 'unchanged' | 'started' | 'reloaded' | 'failed' | 'rolled-back';

export interface WorkerReport {
  host: string;
  pmId: number;
  pid: number | null;
  /** The version the worker serves once the deployment ended (null when it is down). */
  version: string | null;
  outcome: WorkerOutcome;
  reason?: string;
  durationMs: number;
  /** The runtime's own account, when the worker answered an update. */
  update?: UpdateResult;
  /** The health probe the worker ran after the hot swap, before it answered. */
  probe?: ProbeResult;
  /**
   * When the update was sent, reached the worker and was answered (epoch ms with fractions, the
   * host's clock), for the benchmark's phases; absent when a worker did not say.
   */
  timing?: UpdateTiming;
}

export interface UpdateTiming {
  sentAt: number;
  receivedAt: number;
  answeredAt: number;
}

export type DeploymentKind = 'push' | 'activate' | 'rollback' | 'reconcile' | 'auto-rollback';

/** What the service asks a host agent to do: make `version` the app's running release. */
export interface ActivationRequest {
  deploymentId: string;
  app: string;
  version: string;
  /** Absolute path of the unpacked release on this host. */
  releaseDir: string;
  manifest: AppManifest;
  /** What to bring back if the new release does not come up (null on an app's first release). */
  previous: { version: string; releaseDir: string } | null;
  /**
   * `reconcile`: the service brings hosts that drifted from its record back to it (its current release).
   * `auto-rollback`: the service swaps an app back after its health window tripped (no window follows it).
   */
  kind: DeploymentKind;
  /** `reload`: skip the hot offer and take the checked graceful reload (`--strategy reload-all`). */
  strategy?: 'auto' | 'reload';
  /**
   * Hosts that cannot be asked (their agent is not there) do not fail the deployment: they are
   * listed `unreachable` and catch up when they are back. Without it, any such host fails it.
   */
  allowUnreachable?: boolean;
  /** A push that reaches a few workers (hosts, for the NATS cluster) first and is watched before the rest. */
  canary?: CanarySpec;
}

/** `--canary <n | n%>` and how long the canary is watched before the rest take the release. */
export interface CanarySpec {
  size: CanarySize;
  watchMs: number;
}

/**
 * The stages of a canary deployment, in order: `canary` (the update reaches the canary workers or
 * hosts), `watch` (the health probe, the workers' health windows and their processes, for `watchMs`),
 * then `rest` (everyone else) — or `swap-back` when the canary failed, leaving the rest untouched.
 */
export type PhaseName = 'canary' | 'watch' | 'rest' | 'swap-back';
export type PhaseStatus = 'running' | 'passed' | 'failed' | 'skipped';

export interface DeploymentPhase {
  name: PhaseName;
  status: PhaseStatus;
  /** The agent that ran it (a host name, or `nats` for the cluster). */
  host: string;
  /** The workers (pm_ids on `host`) it covered; for the NATS cluster, the hosts. */
  workers?: number[];
  hosts?: string[];
  startedAt: string;
  finishedAt?: string;
  reason?: string;
  /** What the watch saw: probes answered, answers the canary's health windows counted, 5xx and exceptions among them. */
  watch?: WatchFigures;
}

export interface WatchFigures {
  watchMs: number;
  probes: number;
  requests: number;
  errors: number;
}

export interface ActivationResult {
  status: 'succeeded' | 'failed' | 'rolled-back';
  /** Which path the host took: first start, hot swap in every worker, or a graceful reload. */
  path: 'start' | 'hot' | 'reload' | 'none';
  /** Why the host fell back, failed or rolled back (the propagation chain, the crash, ...). */
  reason?: string;
  /** A stable `HOT_ERR_*` code when the host refused the release before changing anything (`HOT_ERR_PORT_CONFLICT`). */
  code?: string;
  workers: WorkerReport[];
  /** Per host, when one agent fans out to several hosts (the NATS cluster transport). */
  hosts?: HostResult[];
  /** A canary deployment's phases, in order (absent without a canary). */
  phases?: DeploymentPhase[];
}

/**
 * One host's part of a fanned-out activation. Beside an activation's own statuses: `unreachable`,
 * the host could not be asked; `not-applied`, it was fine but held back because another host failed.
 */
export interface HostResult {
  host: string;
  status: ActivationResult['status'] | 'unreachable' | 'not-applied';
  path: ActivationResult['path'];
  reason?: string;
  /** The host's stable code, when it has one (`ActivationResult.code`). */
  code?: string;
  /** The host did not answer in time; it converges to the current release when it is back. */
  lagging?: boolean;
  /** Brought back to the previous release because another host failed. */
  reverted?: boolean;
}

/** One worker's answer to a dry run (webpack's check pass: nothing disposed or evaluated). */
export interface WorkerPlan {
  pmId: number;
  pid: number | null;
  hot: boolean;
  update?: UpdateResult;
  reason?: string;
}

/** What a host would do with a release: `hot` only when every worker can take it hot. */
export interface HostPlan {
  host: string;
  path: 'start' | 'hot' | 'reload';
  reason?: string;
  workers: WorkerPlan[];
}

export interface WorkerState {
  host: string;
  pmId: number;
  pid: number | null;
  version: string | null;
  status: string;
  lastOutcome?: WorkerOutcome;
  /**
   * The release directories (absolute, on that host) the worker's live code was evaluated from:
   * unchanged modules keep their first release's `__dirname`, so retention keeps these.
   * Absent when the worker did not answer.
   */
  releases?: string[];
  stats?: WorkerStats;
}

/** What PM2 and the worker itself say about a running worker (the service's metrics). */
export interface WorkerStats {
  /** PM2's restart count of this pm_id. */
  restarts: number;
  /** Resident memory (bytes) and CPU (% of one core), PM2's last sample. */
  memoryBytes?: number;
  cpuPercent?: number;
  /** How late the worker's event loop ran over its last ~10 s window: 99th percentile and worst (ms). */
  loopDelayP99Ms?: number;
  loopDelayMaxMs?: number;
}

/** Progress a host agent reports while it works on an activation (goes to the deployment's events). */
export interface AgentEvent {
  deploymentId: string;
  app: string;
  type: 'phase' | 'worker';
  message: string;
  worker?: WorkerReport;
  /** A canary phase that started or ended (the deployment record keeps the newest state of each). */
  phase?: DeploymentPhase;
}

/**
 * What one host runs of an app, as the service compares it with its record: the agent's pointer
 * (the release its workers restart on; null when it has none for the app) and each worker's answer.
 */
export interface HostObservation {
  host: string;
  pointer: string | null;
  workers: WorkerState[];
}

/**
 * The fan-out seam: the deploy service talks to host agents only through this. The in-process PM2
 * agent implements it directly; a NATS transport implements it for agents on other hosts.
 */
export interface HostAgent {
  readonly host: string;
  activate(request: ActivationRequest, onEvent?: (event: AgentEvent) => void): Promise<ActivationResult>;
  workers(app: string): Promise<WorkerState[]>;
  /** The service removed releases of `app` (retention): drop what the agent kept only for them. */
  pruned?(app: string): Promise<void>;
  /**
   * Each host's pointer and workers for `app`, once the agent can tell (connected, apps restored).
   * Agents without it are compared by their workers alone.
   */
  observe?(app: string): Promise<HostObservation[]>;
  /**
   * Calls `listener` with the hosts that (re)connected after the agent's first connection (a PM2
   * daemon it reconnected to, a NATS host that came back); returns the undo.
   */
  onReconnect?(listener: (hosts: string[]) => void): () => void;
  close(): Promise<void>;
}

/**
 * A worker's health window ended (agent/worker/health-window.ts): tripped past the threshold, or
 * passed. `version`: the release the window watched; `at`: when the agent received it (ISO).
 */
export interface HealthWindowEvent {
  host: string;
  app: string;
  version: string;
  pmId: number;
  pid: number;
  at: string;
  report: WindowReport;
  /** The window of a canary worker under watch: the canary's own watch acts on it, not an auto-rollback. */
  canary?: boolean;
}

/** A host agent that says when its workers' health windows end (the service rolls back on a trip). */
export interface WatchedAgent extends HostAgent {
  onHealthWindow(listener: (event: HealthWindowEvent) => void): () => void;
}

export function isWatchedAgent(agent: HostAgent): agent is WatchedAgent {
  return typeof (agent as Partial<WatchedAgent>).onHealthWindow === 'function';
}

/** A host agent that can also answer a dry run (the prepare phase of a cluster deploy). */
export interface PlanningAgent extends HostAgent {
  plan(request: ActivationRequest): Promise<HostPlan>;
}
