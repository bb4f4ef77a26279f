import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { SerialQueue } from '../common/serial-queue.js';
import { HotError } from '../errors.js';
import { readManifest } from '../manifest.js';
import type { AppMode, HotStatus, UpdateResult } from '../messages.js';
import { AppState, isRel } from './app-state.js';
import { checkModules } from './compile-check.js';
import { applyPlan, dispose } from './apply.js';
import { describeError } from './error-location.js';
import type { EsmRetiredLimit } from './esm-plan.js';
import { resolveHandler } from './entry-shapes.js';
import { HandlerHost } from './handler.js';
import { hostContext, loadEntry } from './load-entry.js';
import { compareReleases, manifestUnchanged, planUpdate, type UpdatePlan } from './plan.js';
import { addOwner, isHosted, removeOwner } from './registry.js';
import { sweepPathCache } from './sweep.js';

/** pino-compatible: the worker bootstrap passes its own logger. */
export interface RuntimeLogger {
  error(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface HostAppOptions {
  name: string;
  /** The release directory to start from. */
  dir: string;
  /** Overrides the release's `hotdeploy.mode`. */
  mode?: AppMode;
  /** How long a replaced version's requests may run before its retire callbacks run anyway. */
  drainTimeoutMs?: number;
  /** `process.cwd()` follows the current release (the worker bootstrap; off for several apps in one process). */
  chdir?: boolean;
  /** Load a process-mode entry as `require.main` (the worker bootstrap). */
  main?: boolean;
  logger?: RuntimeLogger;
  /**
   * ES module apps: how much retired module source and how many retired versions the process may
   * hold; an update that would go past either takes the reload path (`esm-retired-limit`).
   * Overrides the release's `hotdeploy.esmRetiredLimit` and the defaults (esm-plan.ts).
   */
  esmRetiredLimit?: Partial<EsmRetiredLimit>;
  /** Updates the app starts itself (`module.hot.invalidate()`) report here. */
  onUpdate?: (result: UpdateResult) => void;
}

export interface HostedApp {
  readonly name: string;
  /** The release directory now current (a realpath). */
  readonly dir: string;
  readonly mode: AppMode;
  /** Stable across updates: calls the current version's handler (handler mode). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  status(): HotStatus;
  /**
   * Release directories the app still runs code from: the current one, plus those unchanged modules
   * were first evaluated from (their `__dirname`). A release store must not prune these.
   */
  releasesInUse(): string[];
  /** Swaps the app to another release directory: one update at a time, in call order. */
  update(dir: string): Promise<UpdateResult>;
  /** What `update(dir)` would do now, with nothing disposed or evaluated. */
  plan(dir: string): Promise<UpdateResult>;
  /** Disposes and evicts the app's modules; the last app to close undoes the loader hooks. */
  close(): Promise<void>;
}

/** Without a logger from the worker bootstrap: app errors only, one stream for every app. */
let defaultLogger: RuntimeLogger | undefined;

export async function hostApp(options: HostAppOptions): Promise<HostedApp> {
  validateOptions(options);
  const dir = await realpath(options.dir).catch((err: unknown) => {
    throw new HotError('HOT_ERR_MANIFEST', `${options.dir} cannot be read`, { cause: err });
  });
  if (isHosted(dir)) throw new HotError('HOT_ERR_ALREADY_HOSTED', dir);
  const manifest = await readManifest(dir);
  const logger = options.logger ?? (defaultLogger ??= pino({ name: 'hotdeploy-runtime', level: 'warn' }));
  const onError = (err: unknown, where: string): void => logger.error({ app: options.name, err, where }, `app error in ${where}`);
  const ref: { hosted?: Hosted } = {};
  const state = new AppState({
    name: options.name, dir, manifest, mode: options.mode ?? manifest.mode, chdir: options.chdir ?? false,
    onInvalidate: () => ref.hosted?.invalidated(), onError,
  });
  state.esmRetiredLimit = options.esmRetiredLimit;
  const host = new HandlerHost(options.drainTimeoutMs ?? 30_000, onError);
  const startCwd = process.cwd();
  addOwner(state);
  try {
    if (options.chdir) process.chdir(dir);
    const exported = state.esm
      ? await state.esm.importCurrent(manifest.entry)
      : await loadEntry(dir, manifest.entry, manifest.esm, (options.main ?? false) && state.mode === 'process');
    if (state.mode === 'handler') {
      host.swap(await resolveHandler(exported, hostContext(state)), []);
    }
  } catch (err) {
    for (const record of [...state.records.values()]) dispose(state, record, [], []);
    state.closeEsm();
    removeOwner(state);
    if (options.chdir && process.cwd() === dir) process.chdir(startCwd);
    throw err;
  }
  ref.hosted = new Hosted(state, host, options, logger, startCwd);
  return ref.hosted;
}

function validateOptions(options: HostAppOptions): void {
  if (typeof options.name !== 'string' || options.name === '') throw new HotError('HOT_ERR_SETTINGS', 'name must be a non-empty string');
  if (typeof options.dir !== 'string' || options.dir === '') throw new HotError('HOT_ERR_SETTINGS', 'dir must be a non-empty string');
  if (options.mode !== undefined && options.mode !== 'handler' && options.mode !== 'process') {
    throw new HotError('HOT_ERR_SETTINGS', `mode must be "handler" or "process", not ${JSON.stringify(options.mode)}`);
  }
  const drain = options.drainTimeoutMs;
  if (drain !== undefined && (typeof drain !== 'number' || !Number.isFinite(drain) || drain < 0)) {
    throw new HotError('HOT_ERR_SETTINGS', 'drainTimeoutMs must be a finite number ≥ 0');
  }
}

class Hosted implements HostedApp {
  private readonly queue = new SerialQueue();
  private closed = false;
  private closing: Promise<void> | undefined;
  private invalidationQueued = false;

  constructor(
    private readonly state: AppState,
    private readonly host: HandlerHost,
    private readonly options: HostAppOptions,
    private readonly logger: RuntimeLogger,
    private readonly startCwd: string,
  ) {}

  get name(): string {
    return this.state.name;
  }

  get dir(): string {
    return this.state.dir;
  }

  get mode(): AppMode {
    return this.state.mode;
  }

  get handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return this.host.handler;
  }

  status(): HotStatus {
    return this.state.status;
  }

  releasesInUse(): string[] {
    return this.closed ? [] : this.state.releasesInUse();
  }

  update(dir: string): Promise<UpdateResult> {
    return this.enqueue(() => this.run(dir, true));
  }

  plan(dir: string): Promise<UpdateResult> {
    return this.enqueue(async () => {
      const result = await this.run(dir, false);
      // A dry run's directory is usually never hosted (`hotdeploy plan` stages each bundle afresh):
      // what resolving from it put in Node's path cache would pile up plan after plan.
      if (result.to !== this.state.dir) setImmediate(() => sweepPathCache(result.to));
      return result;
    });
  }

  /** Idempotent: closing a closed app resolves. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.enqueue(async () => {
      this.closed = true;
      const retire: (() => Promise<void>)[] = [];
      for (const record of [...this.state.records.values()]) dispose(this.state, record, [], retire);
      for (const rel of [...this.state.esm?.records.keys() ?? []]) await this.state.esm?.dispose(rel, [], retire);
      this.state.closeEsm();
      this.state.graph.clear();
      this.state.pendingData.clear();
      this.state.invalidated.clear();
      removeOwner(this.state);
      const dir = this.state.dir;
      setImmediate(() => sweepPathCache(dir));
      if (this.options.chdir && process.cwd() === dir) process.chdir(this.startCwd);
      await this.host.close(retire);
    });
    return this.closing;
  }

  /** From `module.hot.invalidate()`: an update to the current release, after any running one. */
  invalidated(): void {
    if (this.invalidationQueued || this.closed) return;
    this.invalidationQueued = true;
    void this.enqueue(async () => {
      this.invalidationQueued = false;
      const result = await this.run(this.state.dir, true);
      this.logger.info({ app: this.name, outcome: result.outcome, disposed: result.disposed }, 'invalidated update');
      this.options.onUpdate?.(result);
    }).catch((err: unknown) => this.logger.error({ app: this.name, err }, 'invalidated update failed'));
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(() => {
      if (this.closed) throw new HotError('HOT_ERR_CLOSED', this.name);
      return task();
    });
  }

  /** One code path for both: `update` is `plan` plus apply (webpack's check, then apply). */
  private async run(dir: string, apply: boolean): Promise<UpdateResult> {
    const started = performance.now();
    const from = this.state.dir;
    const finish = (rest: Omit<UpdateResult, 'from' | 'to' | 'durationMs'>, to: string): UpdateResult =>
      ({ ...rest, from, to, durationMs: performance.now() - started });
    const plan = await this.check(dir, apply);
    if (plan.kind === 'abort') {
      if (apply) await this.state.setStatus('ready').then(() => this.state.setStatus('abort'));
      return finish(plan.result, plan.to);
    }
    if (plan.kind === 'unchanged') {
      if (apply) {
        this.state.moveTo(plan);
        await this.state.setStatus('idle');
      }
      return finish({ outcome: 'unchanged', outdated: [], disposed: [], accepted: [] }, plan.to);
    }
    const reason = plan.wholeApp ? { reason: plan.wholeApp } : {};
    if (!apply) {
      const problem = this.compileCheck(plan);
      if (problem) return finish({ outcome: 'failed', outdated: plan.outdated, disposed: [], accepted: [], reason: problem, error: { message: problem } }, plan.to);
      const disposed = [...plan.propagation.outdated].sort();
      return finish({ outcome: 'hot', outdated: plan.outdated, disposed, accepted: plannedAcceptors(plan), ...reason }, plan.to);
    }
    await this.state.setStatus('ready');
    for (const rel of plan.outdated) this.state.invalidated.delete(rel);
    try {
      const applied = await applyPlan(this.state, this.host, plan);
      return finish({ ...applied.result, outdated: plan.outdated, ...reason }, plan.to);
    } catch (err) {
      await this.state.setStatus('fail');
      return finish({ outcome: 'failed', outdated: plan.outdated, disposed: [], accepted: [], error: describeError(err, [plan.to, this.state.dir, ...this.state.releasesInUse()]) }, plan.to);
    }
  }

  /** A dry run's check of what the update would evaluate (compile-check.ts): the first problem, if any. */
  private compileCheck(plan: Extract<UpdatePlan, { kind: 'apply' }>): string | undefined {
    // ES module sources do not compile as CommonJS: their evaluation is their check.
    if (this.state.manifest.esm) return undefined;
    // The changed ones: a module evaluated again unchanged compiles as before, and its requires
    // that resolve differently now made it one of `outdated`.
    const evaluated = plan.outdated.filter((rel) => !plan.gone.includes(rel));
    if (plan.propagation.entryReached && this.state.mode === 'handler') evaluated.push(plan.manifest.entry);
    return checkModules(plan.to, evaluated, (rel, request) => {
      const target = this.state.resolveIn(plan.index, rel, request);
      return { target, isNew: isRel(target) && !this.state.records.has(target) };
    });
  }

  /**
   * Bad input rejects with a HOT_ERR_* code before any status changes; the app is untouched.
   * Synchronous unless the manifest must be read (it changed, or paths appeared or went), so an
   * update is not interleaved with the worker's other work (file-index.ts says why).
   */
  private async check(dir: string, apply: boolean): Promise<UpdatePlan> {
    let to: string;
    try {
      to = realpathSync.native(dir);
    } catch (err) {
      throw new HotError('HOT_ERR_MANIFEST', `${dir} cannot be read`, { cause: err });
    }
    if (to !== this.state.dir && isHosted(to)) throw new HotError('HOT_ERR_ALREADY_HOSTED', to);
    const comparison = compareReleases(this.state, to);
    const manifest = manifestUnchanged(this.state, comparison) ? this.state.manifest : await readManifest(to);
    if (apply) await this.state.setStatus('check');
    if (apply) await this.state.setStatus('prepare');
    try {
      return planUpdate(this.state, to, manifest, comparison);
    } catch (err) {
      if (apply) await this.state.setStatus('idle');
      throw err;
    }
  }
}

function plannedAcceptors(plan: Extract<UpdatePlan, { kind: 'apply' }>): string[] {
  const { propagation } = plan;
  const acceptors = new Set([...propagation.acceptedBy.keys(), ...propagation.selfAccepted]);
  if (propagation.entryReached) acceptors.add(plan.manifest.entry);
  return [...acceptors].sort();
}
