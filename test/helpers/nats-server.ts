import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from './tmp.js';

/**
 * The `nats-server` binary (2.9 or later), from PATH or the sbin folders Debian's package installs
 * it to; undefined when the machine has none, and the tests that need one are skipped.
 */
export const natsServerBinary: string | undefined = findBinary('nats-server');

/** Why the NATS tests are skipped, printed once per run (test/helpers/global-setup.ts). */
export const NATS_SERVER_MISSING = 'nats-server is not installed: the tests that need NATS are skipped (apt-get install nats-server, or put a nats-server 2.9+ on PATH)';

export interface NatsServer {
  url: string;
  port: number;
  /** SIGTERM, SIGKILL after 5 s; then its store is removed. */
  stop(): Promise<void>;
  /** An outage: stopped, `down` awaited, then started again on the same port with the same store. */
  restart(down?: () => Promise<void>): Promise<void>;
}

/**
 * A private nats-server with JetStream: loopback only, on a port it picks itself (`-p -1`, read back
 * from its log, so no other process can take it in between), its store in a fresh temp directory.
 * `config` is written to a file given with `-c`; `args` are added as they are.
 */
export async function startNatsServer(options: { args?: string[]; config?: string } = {}): Promise<NatsServer> {
  const binary = natsServerBinary;
  if (binary === undefined) throw new Error(NATS_SERVER_MISSING);
  const { dir, cleanup } = await tempDir('hd-nats-server-');
  const config = options.config === undefined ? [] : ['-c', path.join(dir, 'server.conf')];
  if (options.config !== undefined) await writeFile(path.join(dir, 'server.conf'), options.config);
  const args = (port: number) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', path.join(dir, 'store'), ...config, ...(options.args ?? [])];
  let child: ChildProcess | undefined;
  // A test process that dies leaves no server behind.
  const killOnExit = (): void => void child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  const halt = async (): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    await halt();
    await cleanup();
  };
  const launch = async (port: number): Promise<number> => {
    child = spawn(binary, args(port), { stdio: ['ignore', 'ignore', 'pipe'] });
    return ready(child);
  };
  try {
    const port = await launch(-1);
    return {
      url: `nats://127.0.0.1:${port}`, port, stop,
      async restart(down) {
        await halt();
        await down?.();
        await launch(port);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves with the port the server listens on once it says it is ready. */
function ready(child: ChildProcess): Promise<number> {
  let log = '';
  child.stderr?.setEncoding('utf8');
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server was not ready within 15 s:\n${log}`)), 15_000);
    let listening: number | undefined;
    child.stderr?.on('data', (chunk: string) => {
      log += chunk;
      listening ??= Number(/Listening for client connections on [^\s]+:(\d+)/.exec(log)?.[1]) || undefined;
      if (listening !== undefined && log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(listening);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${signal ?? code}) before it was ready:\n${log}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return undefined;
}
