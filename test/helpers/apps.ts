import http from 'node:http';
import path from 'node:path';
import { readManifest } from '../../agent/manifest.js';
import type { ActivationRequest } from '../../agent/messages.js';
import { writeTree } from './tmp.js';

/**
 * A handler-mode app: the entry answers `{ message, pid, version }`, `message` coming from
 * `message.js`. `messageJs` replaces that module (to decline, throw, ...); `indexJs` the entry.
 */
export function handlerApp(options: { name: string; version: string; port: number; message?: string; messageJs?: string; indexJs?: string; instances?: number; env?: Record<string, string> }): Record<string, string | object> {
  return {
    'package.json': {
      name: options.name,
      version: '1.0.0',
      main: 'index.js',
      hotdeploy: { port: options.port, instances: options.instances ?? 2, ...(options.env ? { env: options.env } : {}) },
    },
    'index.js': options.indexJs ?? `
const message = require('./message.js');
module.exports = (req, res) => {
  res.setHeader('content-type', 'application/json');
  // /slow answers after 1.5 s: an in-flight request across a reload.
  const delay = req.url === '/slow' ? 1500 : 0;
  setTimeout(() => res.end(JSON.stringify({ message, pid: process.pid, cwd: process.cwd(), node: process.version })), delay);
};
`,
    'message.js': options.messageJs ?? `module.exports = ${JSON.stringify(options.message ?? 'hello')};\n`,
  };
}

/** Writes a release where the deploy service would put it, and the request the service would send. */
export async function release(dataDir: string, app: string, version: string, files: Record<string, string | object>,
  previous: { version: string; releaseDir: string } | null = null, kind: ActivationRequest['kind'] = 'push'): Promise<ActivationRequest> {
  const releaseDir = path.join(dataDir, 'apps', app, 'releases', version);
  await writeTree(releaseDir, files);
  return { deploymentId: `${app}-${version}-${Date.now()}`, app, version, releaseDir, manifest: await readManifest(releaseDir), previous, kind };
}

export interface Answer {
  message: string;
  pid: number;
  /** The worker's cwd: the runtime moves it to the release it is on (`hostApp({ chdir: true })`). */
  cwd?: string;
  /** The worker's `process.version`. */
  node?: string;
}

/**
 * `connections` keep-alive clients asking in a loop while `during` runs; resolves with the count
 * of good answers and every failure (status or socket error).
 */
export async function underLoad(port: number, connections: number, during: () => Promise<void>): Promise<{ ok: number; failures: string[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let ok = 0;
  const failures: string[] = [];
  let stop = false;
  const loop = async (): Promise<void> => {
    while (!stop) {
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => { if (res.statusCode === 200) ok++; else failures.push(`status ${res.statusCode}`); resolve(); });
        });
        req.on('error', (err: NodeJS.ErrnoException) => { failures.push(err.code ?? err.message); resolve(); });
      });
    }
  };
  const loops = Array.from({ length: connections }, loop);
  try {
    await during();
  } finally {
    stop = true;
    await Promise.all(loops);
    agent.destroy();
  }
  return { ok, failures };
}

/**
 * How long one `ask` waits: long enough for any answer of a loaded 2-core machine, short against
 * undici's 300 s wait for headers, where a connection no worker answers would sit (during `pm2
 * reload`, PM2 can hand a new connection to a worker that is closing: docs/BENCHMARKS.md, figure 1).
 */
const ASK_TIMEOUT_MS = 10_000;

/** One GET on a fresh connection; fails after `timeoutMs`. */
export async function ask(port: number, pathname = '/', timeoutMs = ASK_TIMEOUT_MS): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`GET ${pathname}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Answer;
}

/** Asks until `count` distinct pids answered (PM2 round-robins connections between workers). */
export async function pidsServing(port: number, count: number, timeoutMs = 10_000): Promise<{ pids: number[]; messages: string[] }> {
  const pids = new Set<number>();
  const messages = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  while (pids.size < count && Date.now() < deadline) {
    const a = await ask(port);
    pids.add(a.pid);
    messages.add(a.message);
  }
  if (pids.size < count) throw new Error(`only ${pids.size} of ${count} workers answered within ${timeoutMs} ms`);
  return { pids: [...pids].sort(), messages: [...messages] };
}
