import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (`npm test` builds before vitest runs). */
export const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/services/cli/main.js');
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The environment without the caller's hotdeploy settings, so a developer's shell cannot leak in. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('HOTDEPLOY_') || key === 'GITHUB_SHA' || key === 'CI_COMMIT_SHORT_SHA') delete env[key];
  return { ...env, ...extra };
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI invocation as a real child process. */
export function runMain(args: string[], env: NodeJS.ProcessEnv, cwd = REPO): Promise<Finished> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, ...args], { env, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: child.exitCode ?? (err as { code?: number } | null)?.code ?? null, stdout, stderr });
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of `pattern` in stdout + stderr, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export function startServe(args: string[], env: NodeJS.ProcessEnv): ServeProcess {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    resolve(code);
    for (const listener of listeners) listener();
  }));
  return {
    child,
    output: () => text,
    waitFor: (pattern, timeoutMs = 30_000) => new Promise((resolve, reject) => {
      const check = () => {
        const match = text.match(pattern);
        if (match) {
          cleanup();
          resolve(match);
        } else if (child.exitCode !== null) {
          cleanup();
          reject(new Error(`serve exited ${child.exitCode} before ${pattern}; output:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms; output so far:\n${text}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
