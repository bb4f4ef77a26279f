import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { writeState } from '../../agent/pm2/state.js';
import { TOPIC, isWorkerMessage, type AgentMessage, type WorkerMessage } from '../../agent/pm2/protocol.js';
import { repoRoot } from '../helpers/release.js';

type Request = AgentMessage extends infer M ? M extends AgentMessage ? Omit<M, 'requestId'> : never : never;

export interface WorkerProcess {
  child: ChildProcess;
  /** Every message the worker sent, in order. */
  messages: WorkerMessage[];
  stderr: () => string;
  /** Sends a request over the worker's IPC (as PM2 would deliver it) and waits for its answer. */
  request(message: Request, timeoutMs?: number): Promise<WorkerMessage>;
  /** Waits for a message `match` accepts (already received or still to come). */
  next(match: (m: WorkerMessage) => boolean, timeoutMs?: number): Promise<WorkerMessage>;
  close(): Promise<void>;
}

/**
 * The real worker bootstrap (dist/agent/worker/bootstrap.js) outside PM2, hosting `releaseDir` from
 * an agent pointer in `dataDir`, driven over its IPC protocol the way the agent drives it through PM2.
 * Resolves once it booted (`ready`) or failed to (`boot-failed`, then exit).
 */
export async function startWorker(options: { dataDir: string; app: string; version: string; releaseDir: string; env?: Record<string, string> }): Promise<WorkerProcess> {
  await writeState(options.dataDir, { app: options.app, version: options.version, releaseDir: options.releaseDir, instances: 1, env: options.env ?? {} });
  // Not the test runner's own variables: libraries change course under a test runner
  // (@fastify/autoload imports plugins as ES modules when it sees VITEST).
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
  const child = fork(path.join(repoRoot, 'dist', 'agent', 'worker', 'bootstrap.js'), [], {
    cwd: options.dataDir,
    env: {
      ...env,
      ...options.env,
      HOTDEPLOY_APP: options.app,
      HOTDEPLOY_STATE_FILE: path.join(options.dataDir, 'agent', 'apps', `${options.app}.json`),
      HOTDEPLOY_KILL_TIMEOUT_MS: '1000',
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const messages: WorkerMessage[] = [];
  const waiters = new Set<() => void>();
  child.on('message', (raw: unknown) => {
    const data = (raw as { data?: unknown } | null)?.data;
    if (isWorkerMessage(data)) messages.push(data);
    for (const wake of [...waiters]) wake();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => { for (const wake of [...waiters]) wake(); });

  const next = (match: (m: WorkerMessage) => boolean, timeoutMs = 20_000): Promise<WorkerMessage> => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = messages.find(match);
      if (found) done(() => resolve(found));
      else if (child.exitCode !== null || child.signalCode !== null) done(() => reject(new Error(`the worker exited (${child.exitCode ?? child.signalCode}): ${stderr}`)));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no matching worker message within ${timeoutMs} ms; stderr: ${stderr}`))), timeoutMs);
    const done = (then: () => void): void => {
      clearTimeout(timer);
      waiters.delete(check);
      then();
    };
    waiters.add(check);
    check();
  });

  await next((m) => m.kind === 'booted' || m.kind === 'boot-failed', 30_000).catch(() => undefined);
  return {
    child,
    messages,
    stderr: () => stderr,
    request: (message, timeoutMs) => {
      const requestId = randomUUID();
      child.send({ type: 'process:msg', topic: TOPIC, data: { ...message, requestId } });
      // A worker says which module it evaluates (`loading`) before it answers.
      return next((m) => 'requestId' in m && m.requestId === requestId && m.kind !== 'loading', timeoutMs);
    },
    next,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
