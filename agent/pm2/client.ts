import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { HotError } from '../errors.js';
import { daemonEnv, spawnDaemon } from './daemon.js';
import { baseEnv } from './environment.js';

/**
 * A small promise layer over PM2's programmatic API (pm2 7.0.4), one per PM2 home.
 *
 * PM2 reads `PM2_HOME` when its module is first loaded (paths.js), so `import pm2 from 'pm2'` in a
 * process whose environment changes later talks to the wrong daemon. `new pm2.custom({ pm2_home })`
 * takes the home explicitly; it also rewrites PM2's shared constants, so one process drives one home.
 *
 * PM2's sockets (axon) reconnect forever and queue calls while the daemon is gone, so a call to a dead
 * daemon never answers: every call here has a deadline and also fails as soon as the bus reports the
 * daemon gone (`lost`).
 *
 * Processes are addressed by pm_id only, through the daemon's own RPC (`reloadProcessId`,
 * `deleteProcessId`, `duplicateProcessId`): PM2's API reads a string as a name, then a namespace,
 * then a pm_id, and `all` as every process, even when given a number (a process *named* `3` wins
 * over pm_id 3). Only `start` takes a name, which PM2 stores and shows (`pm2 ls`).
 *
 * A daemon this client has to start gets `daemonEnv` as its whole environment (daemon.ts), not
 * this process's: its apps inherit it.
 */

const require = createRequire(import.meta.url);

export interface Pm2Process {
  name: string;
  pmId: number;
  pid: number | null;
  status: string;
  restarts: number;
  unstableRestarts: number;
  createdAt: number;
  /** PM2's last sample of the process (`monit`): resident memory in bytes, CPU in percent of one core. */
  memory?: number;
  cpu?: number;
  /** The environment PM2 started the process with (its app's `env`), string values only. */
  env: Record<string, string>;
}

export interface BusPacket {
  process?: { pm_id?: number | string; name?: string };
  data?: unknown;
  raw?: unknown;
  event?: string;
}

export interface Pm2StartOptions {
  name: string;
  script: string;
  cwd: string;
  instances: number;
  env: Record<string, string>;
  listenTimeoutMs: number;
  killTimeoutMs: number;
}

interface RawProcess {
  name?: string;
  pm_id?: number;
  pid?: number;
  monit?: { memory?: number; cpu?: number };
  pm2_env?: { status?: string; restart_time?: number; unstable_restarts?: number; created_at?: number; pm_uptime?: number; env?: Record<string, unknown> };
}

type Callback<T> = (err: Error | null | undefined, value: T) => void;
type LaunchCallback = (err: Error | null, child?: unknown) => void;

/** The slice of PM2's API instance this layer uses (pm2's own typings do not cover `custom`). */
interface Pm2Api {
  connect(cb: Callback<unknown>): void;
  disconnect(cb?: () => void): void;
  start(options: Record<string, unknown>, cb: Callback<unknown>): void;
  list(cb: Callback<RawProcess[]>): void;
  sendDataToProcessId(pmId: number, packet: Record<string, unknown>, cb: Callback<unknown>): void;
  launchBus(cb: Callback<EventEmitter>): void;
  killDaemon(cb: Callback<unknown>): void;
  _conf: { PM2_LOG_FILE_PATH: string };
  Client: {
    sub_sock?: EventEmitter;
    client_sock?: EventEmitter;
    executeRemote(method: string, arg: unknown, cb: Callback<unknown>): void;
    launchDaemon(opts: unknown, cb?: LaunchCallback): void;
  };
}

export interface Pm2ClientOptions {
  home: string;
  callTimeoutMs?: number;
  /** The whole environment of a daemon this client starts; default: the base of this process's (environment.ts). */
  daemonEnv?: Record<string, string>;
}

export class Pm2Client extends EventEmitter {
  readonly home: string;
  /** Whether the last `connect` started the daemon (else it found one running). */
  startedDaemon = false;
  private readonly daemonEnv: Record<string, string>;
  private api: Pm2Api | undefined;
  private lostReject: ((err: Error) => void) | undefined;
  private lostPromise: Promise<never> | undefined;
  private connecting: Promise<void> | undefined;
  private closing = false;
  /** Default deadline of one PM2 call; starts and reloads pass their own. */
  readonly callTimeoutMs: number;

  constructor(options: Pm2ClientOptions) {
    super();
    this.home = options.home;
    this.callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.daemonEnv = options.daemonEnv ?? daemonEnv(this.home, baseEnv(process.env));
  }

  get connected(): boolean {
    return this.api !== undefined && this.lostPromise !== undefined;
  }

  /** Connects to the daemon of this home, starting one if none runs (PM2's `connect`). Idempotent. */
  connect(): Promise<void> {
    if (this.connected) return Promise.resolve();
    this.closing = false;
    this.connecting ??= this.doConnect().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    // pm2's index.js builds a default instance on load, which creates ~/.pm2 even when another home
    // is used; its API class alone does not. PM2_PROGRAMMATIC is what index.js sets (quiet output).
    process.env.PM2_PROGRAMMATIC = 'true';
    const Custom = require('pm2/lib/API.js') as new (opts: object) => Pm2Api;
    const api = new Custom({ pm2_home: this.home });
    // PM2's `connect` pings the daemon and, when none answers, starts one through this method.
    this.startedDaemon = false;
    api.Client.launchDaemon = (opts, cb) => {
      // PM2 calls it as launchDaemon(cb) or launchDaemon(opts, cb).
      const done = typeof opts === 'function' ? opts as LaunchCallback : cb;
      this.startedDaemon = true;
      spawnDaemon(this.home, api._conf.PM2_LOG_FILE_PATH, this.daemonEnv, (err, child) => done?.(err, child));
    };
    await within(promisify<unknown>((cb) => api.connect(cb))(), this.callTimeoutMs, 'pm2.connect');
    const bus = await within(promisify<EventEmitter>((cb) => api.launchBus(cb))(), this.callTimeoutMs, 'pm2.launchBus');
    if (this.closing) {
      // `disconnect` was called while connecting: do not keep a connection nobody will close.
      api.disconnect();
      throw new HotError('HOT_ERR_PM2_DOWN', 'the PM2 client was closed while connecting');
    }
    this.api = api;
    this.lostPromise = new Promise<never>((_, reject) => { this.lostReject = reject; });
    // Nobody may be awaiting `lost` when the daemon dies; the rejection is still observed by callers.
    this.lostPromise.catch(() => undefined);
    bus.on('process:msg', (packet: BusPacket) => this.emit('message', packet));
    bus.on('process:event', (packet: BusPacket) => this.emit('event', packet));
    // axon client sockets emit 'reconnect attempt' once their connection closed (pm2-axon sock.js):
    // the daemon's pub socket went away, so the daemon is gone or going.
    api.Client.sub_sock?.once('reconnect attempt', () => this.markLost('the PM2 daemon went away (its event bus closed)'));
    this.emit('connected');
  }

  /** Marks the daemon gone: pending and future calls fail until `connect` succeeds again. */
  markLost(reason: string): void {
    if (!this.api || this.closing) return;
    const api = this.api;
    this.api = undefined;
    this.lostReject?.(new HotError('HOT_ERR_PM2_DOWN', reason));
    this.lostPromise = undefined;
    this.lostReject = undefined;
    // Stop axon's endless reconnect attempts on the dead sockets; `connect` makes fresh ones.
    try { api.disconnect(); } catch { /* already closed */ }
    this.emit('lost', reason);
  }

  /** Resolves never; rejects when the daemon is lost. Race a wait against it. */
  get lost(): Promise<never> {
    return this.lostPromise ?? Promise.reject(new HotError('HOT_ERR_PM2_DOWN', 'not connected to a PM2 daemon'));
  }

  private async call<T>(name: string, run: (api: Pm2Api, cb: Callback<T>) => void, timeoutMs = this.callTimeoutMs): Promise<T> {
    const api = this.api;
    if (!api) throw new HotError('HOT_ERR_PM2_DOWN', `pm2.${name}: not connected to a PM2 daemon`);
    const pending = within(promisify<T>((cb) => run(api, cb))(), timeoutMs, `pm2.${name}`);
    // When `lost` wins, the call's own deadline still fires later: observed here, not unhandled.
    pending.catch(() => undefined);
    return Promise.race([pending, this.lost]);
  }

  /**
   * Starts `options.name` in cluster mode. `filter_env`: PM2's client would otherwise copy this
   * process's whole environment into the app's (Common.prepareAppConf). `true` does not do it in
   * pm2 7.0.4 (the check is `filter_env.length > 0`); a list of name fragments drops every name that
   * contains one, and every name contains ''.
   */
  async start(options: Pm2StartOptions): Promise<void> {
    const timeout = options.listenTimeoutMs * 2 + this.callTimeoutMs;
    await this.call('start', (api, cb) => api.start({
      name: options.name,
      script: options.script,
      cwd: options.cwd,
      exec_mode: 'cluster',
      instances: options.instances,
      env: options.env,
      filter_env: [''],
      wait_ready: true,
      listen_timeout: options.listenTimeoutMs,
      kill_timeout: options.killTimeoutMs,
      autorestart: true,
      // A release that crashes at start must not spin forever: PM2 marks it errored instead.
      max_restarts: 5,
      min_uptime: 2_000,
      merge_logs: true,
    }, cb), timeout);
  }

  /** Graceful reload of one process (PM2 starts its replacement, waits for `ready`, then stops it). */
  async reload(pmId: number, timeoutMs: number): Promise<void> {
    // An empty `env`: PM2 merges it into the process's stored env, and the client's is not wanted.
    await this.remote('reloadProcessId', { id: pmId, env: {} }, timeoutMs);
  }

  /** A new process of the same app, with the same settings and env (PM2's scale up). */
  async duplicate(pmId: number, timeoutMs: number): Promise<void> {
    await this.remote('duplicateProcessId', pmId, timeoutMs);
  }

  /** Stops (SIGINT, then SIGKILL after its kill_timeout) and forgets one process. */
  async delete(pmId: number, timeoutMs = this.callTimeoutMs): Promise<void> {
    await this.remote('deleteProcessId', pmId, timeoutMs);
  }

  /** Every process of the daemon. */
  async list(): Promise<Pm2Process[]> {
    const raw = await this.call<RawProcess[]>('list', (api, cb) => api.list(cb));
    return raw.map(toProcess).sort((a, b) => a.pmId - b.pmId);
  }

  /** Delivers `{ topic, data }` to one worker's `process.on('message')` (PM2's sendDataToProcessId). */
  async send(pmId: number, topic: string, data: unknown): Promise<void> {
    await this.call('sendDataToProcessId', (api, cb) =>
      api.sendDataToProcessId(pmId, { type: 'process:msg', topic, data }, cb));
  }

  /** One RPC method of the daemon (pm2/lib/God/ActionMethods.js), which takes a pm_id as it is. */
  private remote(method: string, arg: unknown, timeoutMs: number): Promise<unknown> {
    return this.call(method, (api, cb) => api.Client.executeRemote(method, arg, cb), timeoutMs);
  }

  /** Kills the daemon and with it every app it runs (tests' teardown, operators' `kill`). */
  async killDaemon(): Promise<void> {
    await this.connect();
    const api = this.api;
    this.closing = true;
    this.api = undefined;
    this.lostPromise = undefined;
    if (api) await within(promisify<unknown>((cb) => api.killDaemon(cb))(), this.callTimeoutMs, 'pm2.killDaemon').catch(() => undefined);
    if (api) await new Promise<void>((resolve) => api.disconnect(() => resolve()));
  }

  /** Closes our sockets; the daemon and its apps keep running. */
  async disconnect(): Promise<void> {
    this.closing = true;
    const api = this.api;
    this.api = undefined;
    this.lostPromise = undefined;
    if (api) await within(new Promise<void>((resolve) => api.disconnect(() => resolve())), 2_000, 'pm2.disconnect').catch(() => undefined);
  }
}

function toProcess(raw: RawProcess): Pm2Process {
  const env = raw.pm2_env ?? {};
  return {
    name: raw.name ?? '',
    pmId: raw.pm_id ?? -1,
    pid: raw.pid && raw.pid > 0 ? raw.pid : null,
    status: env.status ?? 'unknown',
    restarts: env.restart_time ?? 0,
    unstableRestarts: env.unstable_restarts ?? 0,
    createdAt: env.pm_uptime ?? env.created_at ?? 0,
    ...(typeof raw.monit?.memory === 'number' ? { memory: raw.monit.memory } : {}),
    ...(typeof raw.monit?.cpu === 'number' ? { cpu: raw.monit.cpu } : {}),
    env: Object.fromEntries(Object.entries(env.env ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string')),
  };
}

/**
 * `promise`, or HOT_ERR_TIMEOUT once `ms` have passed without it settling. The call itself cannot be
 * cancelled (PM2's API takes no signal): a late answer is dropped.
 */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  return new Promise<T>((resolve, reject) => {
    const expired = (): void => reject(new HotError('HOT_ERR_TIMEOUT', `${what} did not finish within ${ms} ms`));
    signal.addEventListener('abort', expired, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', expired));
  });
}
