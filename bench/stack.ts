import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Pm2Client } from '../agent/pm2/client.js';
import { UPLOAD_READ_BYTES } from '../services/cli/client.js';
import { PLAIN_SERVER, appShape, generateApp, type Files } from './app-gen.js';
import { writeFiles } from './bundle.js';
import { spawnServer } from './child.js';
import { tempDir } from './tmp.js';

const TOKEN = 'bench-admin-token-0123456789';
/** A plain program's PM2 settings: how long PM2 waits for a new worker, and for an old one to stop. */
const PLAIN_LISTEN_TIMEOUT_MS = 10_000;
const PLAIN_KILL_TIMEOUT_MS = 1_600;

export interface TimedEvent {
  type: string;
  /** The server's clock, ms since the epoch. */
  at: number;
  message: string;
}

export interface DeploymentAnswer {
  status: number;
  deployment: {
    id: string;
    status: string;
    reason?: string;
    createdAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    workers: { outcome: string; pid: number | null; durationMs: number; update?: { durationMs: number }; timing?: { sentAt: number; receivedAt: number; answeredAt: number }; probe?: { durationMs: number } }[];
  } | null;
}

/** The parts of a stored release the figures read (`GET /v1/apps/:app/releases/:version`). */
export interface ReleaseAnswer {
  version: string;
  /** How its node_modules were installed on the host; absent when it brought its own or needs none. */
  install?: { how: string; ms: number; files: number };
}

/**
 * What figures 1, 3, 6 and 9 run against: the deploy service in its own process (as `hotdeploy serve`)
 * with its PM2 agent, one PM2 daemon in a temp PM2_HOME, and beside hotdeploy's app the same app as an
 * ordinary PM2 cluster program for `pm2 reload`. `close` kills the daemon and removes every temp dir.
 * The service installs bundles' dependencies offline (an npmrc with `offline=true`): only from its npm
 * cache, `<dataDir>/npm/cache`, which a figure fills before it pushes; never a registry.
 */
export class Stack {
  private constructor(
    readonly serverPort: number,
    readonly pm2: Pm2Client,
    /** The service's data directory (its releases, and `tmp/` where it unpacks uploads). */
    readonly dataDir: string,
    private readonly cleanups: (() => Promise<void>)[],
  ) {}

  static async start(): Promise<Stack> {
    const cleanups: (() => Promise<void>)[] = [];
    const home = await tempDir('hd-bench-pm2-');
    const data = await tempDir('hd-bench-data-');
    const settings = await tempDir('hd-bench-npmrc-');
    cleanups.push(home.cleanup, data.cleanup, settings.cleanup);
    const npmrc = path.join(settings.dir, 'npmrc');
    await writeFile(npmrc, 'offline=true\n');
    // The service's agent starts the daemon of PM2_HOME (passed on as its pm2Home); this process drives the same daemon.
    process.env.PM2_HOME = home.dir;
    const pm2 = new Pm2Client({ home: home.dir, callTimeoutMs: 30_000 });
    cleanups.unshift(async () => {
      await pm2.killDaemon().catch(() => undefined);
    });
    try {
      const server = await spawnServer('server-child.js', [data.dir, TOKEN, JSON.stringify({ npmrc })], [], 60_000);
      cleanups.unshift(() => server.stop());
      return new Stack(server.port, pm2, data.dir, cleanups);
    } catch (err) {
      for (const c of cleanups) await c();
      throw err;
    }
  }

  /** PUT a bundle; `query` e.g. `?activate=false`. Answers once the deployment ended (the default wait). */
  async upload(app: string, version: string, body: Buffer | { file: string; bytes: number }, query = ''): Promise<DeploymentAnswer> {
    const { status, body: answer } = await putBundle(this.serverPort, TOKEN, `/v1/apps/${app}/releases/${version}${query}`, body);
    return { status, deployment: (answer as { deployment?: DeploymentAnswer['deployment'] }).deployment ?? null };
  }

  /** A stored release, as the service describes it. */
  release(app: string, version: string): Promise<ReleaseAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: this.serverPort, path: `/v1/apps/${app}/releases/${version}`, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${app}@${version}: ${res.statusCode} ${text}`));
          resolve(JSON.parse(text) as ReleaseAnswer);
        });
      });
      req.on('error', reject);
    });
  }

  /**
   * Follows `GET /v1/events?app=` (server-sent events): each deployment's events with their server
   * timestamps, to split the hot path into its phases. `ready` resolves once the stream is open.
   */
  follow(app: string): { events: Map<string, TimedEvent[]>; ready: Promise<void>; stop: () => void } {
    const events = new Map<string, TimedEvent[]>();
    let stop = (): void => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: this.serverPort, path: `/v1/events?app=${app}`, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let buffer = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data: '));
            buffer = buffer.slice(end + 2);
            if (!data) continue;
            const e = JSON.parse(data.slice(6)) as { type: string; at: string; deploymentId: string; agent?: { message: string } };
            const list = events.get(e.deploymentId) ?? [];
            list.push({ type: e.type, at: Date.parse(e.at), message: e.agent?.message ?? '' });
            events.set(e.deploymentId, list);
          }
        });
        resolve();
      });
      req.on('error', reject);
      stop = () => req.destroy();
    });
    return { events, ready, stop: () => stop() };
  }

  /**
   * The same generated app as an ordinary program under PM2 (`pm2 start server.js -i 2`, with
   * PM2's graceful ready/SIGINT recipe); a change rewrites the marker leaf only.
   */
  async startPlain(name: string, modules: number, port: number, marker: string): Promise<PlainApp> {
    const { markerLeaf } = appShape(modules);
    return this.startPlainApp(name, port, {
      files: generateApp({ modules, marker, port }),
      change: (next) => ({ [markerLeaf]: generateApp({ modules, marker: next })[markerLeaf] as string }),
    });
  }

  /**
   * An app as an ordinary program under PM2, in a folder of its own with its `files`: a handler-mode
   * app with `server.js` (PLAIN_SERVER, listening on `port` with the handler `index.js` exports),
   * or with `script` that program as is. `prepare` runs there before PM2 starts it (e.g. installs
   * node_modules), `change(marker)` names the files a one-file change rewrites.
   */
  async startPlainApp(name: string, port: number, app: PlainAppFiles): Promise<PlainApp> {
    const dir = await tempDir('hd-bench-plain-');
    this.cleanups.push(dir.cleanup);
    await writeFiles(dir.dir, app.script ? app.files : { ...app.files, 'server.js': PLAIN_SERVER });
    await app.prepare?.(dir.dir);
    const plain = new PlainApp(this.pm2, name, dir.dir, app.change);
    if (app.script) {
      await plain.start(app.script, port);
      return plain;
    }
    await this.pm2.connect();
    await this.pm2.start({
      name, script: path.join(dir.dir, 'server.js'), cwd: dir.dir, instances: 2, env: { PORT: String(port) },
      listenTimeoutMs: PLAIN_LISTEN_TIMEOUT_MS, killTimeoutMs: PLAIN_KILL_TIMEOUT_MS,
    });
    return plain;
  }

  async close(): Promise<void> {
    for (const c of this.cleanups.splice(0)) await c().catch(() => undefined);
  }
}

/** PM2's own API (what `pm2 reload <name>` runs): hotdeploy's client acts by pm_id only. */
interface Pm2Api {
  connect(cb: (err: Error | null) => void): void;
  start(options: object, cb: (err: Error | null) => void): void;
  disconnect(): void;
  reload(name: string, options: object, cb: (err: Error | null) => void): void;
}

export interface PlainAppFiles {
  files: Files;
  /** The program PM2 runs, relative to the folder; without it, PLAIN_SERVER as `server.js`. */
  script?: string;
  prepare?: (dir: string) => Promise<void>;
  change: (marker: string) => Files;
}

export class PlainApp {
  private api: Pm2Api | undefined;

  constructor(private readonly pm2: Pm2Client, readonly name: string, readonly dir: string, private readonly changed: (marker: string) => Files) {}

  /** Puts the new code on disk (the changed file only), as a copy step before `pm2 reload` would. */
  async change(marker: string): Promise<void> {
    for (const [rel, body] of Object.entries(this.changed(marker))) await writeFile(path.join(this.dir, rel), body);
  }

  /**
   * `pm2 start <script> -i 2` through PM2's own API: no `wait_ready`, so PM2 counts a worker up once
   * it listens (a program that sends no `ready`, as express-generator's bin/www); only PORT in its env.
   */
  async start(script: string, port: number): Promise<void> {
    const api = await this.connected();
    await new Promise<void>((resolve, reject) => api.start({
      name: this.name, script: path.join(this.dir, script), cwd: this.dir, exec_mode: 'cluster', instances: 2,
      env: { PORT: String(port) }, filter_env: [''], listen_timeout: PLAIN_LISTEN_TIMEOUT_MS, kill_timeout: PLAIN_KILL_TIMEOUT_MS,
    }, (err) => (err ? reject(err) : resolve())));
  }

  /** `pm2 reload <name>`, through PM2's own API as its CLI does (name lookup, options, one process at a time). */
  async reload(): Promise<void> {
    const api = await this.connected();
    await new Promise<void>((resolve, reject) => api.reload(this.name, { force: true }, (err) => (err ? reject(err) : resolve())));
  }

  private async connected(): Promise<Pm2Api> {
    if (!this.api) {
      const Api = createRequire(import.meta.url)('pm2/lib/API.js') as new (opts: object) => Pm2Api;
      const api = new Api({ pm2_home: this.pm2.home });
      await new Promise<void>((resolve, reject) => api.connect((err) => (err ? reject(err) : resolve())));
      this.api = api;
    }
    return this.api;
  }

  close(): void {
    this.api?.disconnect();
    this.api = undefined;
  }
}

/** PUT a bundle to the service on `port`; resolves with the status and the parsed JSON answer, rejects on a refusal. */
export function putBundle(port: number, token: string, urlPath: string, body: Buffer | { file: string; bytes: number }): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'PUT', path: urlPath,
      headers: {
        authorization: `Bearer ${token}`, 'content-type': 'application/gzip',
        'content-length': Buffer.isBuffer(body) ? body.length : body.bytes,
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
        try {
          const parsed: unknown = JSON.parse(text);
          if ((res.statusCode ?? 0) >= 300) return reject(new Error(`PUT ${urlPath}: ${res.statusCode} ${text}`));
          resolve({ status: res.statusCode ?? 0, body: parsed });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
    if (Buffer.isBuffer(body)) req.end(body);
    // Read as the CLI reads a bundle it uploads.
    else createReadStream(body.file, { highWaterMark: UPLOAD_READ_BYTES }).pipe(req);
  });
}

// A port for a server another process binds: the tests' helper, one implementation for both.
export { freePort } from '../test/helpers/ports.js';
