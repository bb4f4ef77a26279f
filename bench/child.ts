import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children');

/**
 * HOTDEPLOY_BENCH_CPU_PROF=<dir>: every child (the deploy service, the servers, the apply and memory
 * runs) writes a V8 CPU profile there on exit (`node --cpu-prof`), to find where a figure's time goes.
 */
function profileArgs(): string[] {
  const dir = process.env.HOTDEPLOY_BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

/**
 * Runs `children/<script>` (compiled, next to this file) in a fresh Node process and parses the one
 * JSON line it prints last. The child's stderr is passed through on failure only.
 */
export async function runChild<T>(script: string, args: string[], timeoutMs: number, nodeArgs: string[] = []): Promise<T> {
  const child = spawn(process.execPath, [...profileArgs(), ...nodeArgs, path.join(CHILDREN, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const line = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`${script} exited with ${code}: ${err.trim().slice(-2000)}`);
  return JSON.parse(line) as T;
}

/** The child side: run, print the result as one JSON line, exit (non-zero with the error on stderr). */
export function childMain(run: () => Promise<unknown>): void {
  run().then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
  }, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`, () => process.exit(1));
  });
}

export interface ChildServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts `children/<script>`, which prints `{ "port": n }` once listening; `stop` ends it (SIGTERM).
 * `wrapper` runs Node under another command that then execs it (`taskset -c 1`: same process).
 */
export async function spawnServer(script: string, args: string[], wrapper: string[] = [], timeoutMs = 30_000): Promise<ChildServer> {
  const command = [...wrapper, process.execPath, ...profileArgs(), path.join(CHILDREN, script), ...args];
  const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not listen within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${err}`));
    });
  });
  return {
    port,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
