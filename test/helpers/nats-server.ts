import { spawn } from 'node:child_process';
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
}

/**
 * A private nats-server with JetStream: loopback only, on a port it picks itself (`-p -1`, read back
 * from its log, so no other process can take it in between), its store in a fresh temp directory.
 * `config` is written to a file given with `-c`; `args` are added as they are.
 */
export async function startNatsServer(options: { args?: string[]; config?: string } = {}): Promise<NatsServer> {
  if (natsServerBinary === undefined) throw new Error(NATS_SERVER_MISSING);
  const { dir, cleanup } = await tempDir('hd-nats-server-');
  const config = options.config === undefined ? [] : ['-c', path.join(dir, 'server.conf')];
  if (options.config !== undefined) await writeFile(path.join(dir, 'server.conf'), options.config);
  const args = ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', path.join(dir, 'store'), ...config, ...(options.args ?? [])];
  const child = spawn(natsServerBinary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // A test process that dies leaves no server behind.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let log = '';
  child.stderr.setEncoding('utf8');
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await cleanup();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server was not ready within 15 s:\n${log}`)), 15_000);
      let listening: number | undefined;
      child.stderr.on('data', (chunk: string) => {
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
    return { url: `nats://127.0.0.1:${port}`, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
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
