import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { TOKENS } from './server.js';
import { tempDir } from './tmp.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/start-server-child.mjs', import.meta.url));

export interface ChildServer {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGKILL, and wait for the exit. */
  kill: () => Promise<void>;
  /** SIGTERM (a graceful close), and wait for the exit. */
  stop: () => Promise<void>;
}

/**
 * Starts `startServer` from dist/ in a child process and waits (with a deadline) for its URL.
 * `fileSizeLimitKb` runs it under `ulimit -f`: Node ignores SIGXFSZ, so writes past it fail with
 * EFBIG, a real disk error.
 */
export async function startChildServer(dataDir: string, options: Record<string, unknown> = {}, fileSizeLimitKb?: number): Promise<ChildServer> {
  const args = [FIXTURE, dataDir, TOKENS.admin, JSON.stringify(options)];
  const child = fileSizeLimitKb === undefined
    ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('bash', ['-c', `ulimit -f ${fileSizeLimitKb} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child server did not start within 20 s: ${stderr}`)), 20_000);
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      // Log lines (JSON too) may come first: the URL line is the one that starts with it.
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child server exited with ${code}: ${stderr}`));
    });
  });
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(sig);
    await exited;
  };
  return { url, child, stderr: () => stderr, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

export const CHILD_FIXTURE_DIR = path.dirname(FIXTURE);

/** `PUT` a bundle to a listening server over real HTTP, with the admin token. */
export function putBundle(url: string, app: string, version: string, body: Buffer): Promise<Response> {
  return fetch(`${url}/v1/apps/${app}/releases/${version}`, {
    method: 'PUT', body, headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' },
  });
}

/**
 * Registers the hooks of a test file that runs child servers: a fresh data directory per test, and
 * every child started through `start` SIGKILLed and the directory removed afterwards.
 */
export function useChildServers(prefix: string): { dir: () => string; start: typeof startChildServer } {
  let dir = '';
  let cleanup: (() => Promise<void>) | undefined;
  const started: ChildServer[] = [];
  beforeEach(async () => ({ dir, cleanup } = await tempDir(prefix)));
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.kill()));
    await cleanup?.();
  });
  return {
    dir: () => dir,
    start: async (...args) => {
      const server = await startChildServer(...args);
      started.push(server);
      return server;
    },
  };
}
