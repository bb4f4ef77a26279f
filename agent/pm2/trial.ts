import { fork } from 'node:child_process';
import type { ProbeSpec } from '../messages.js';
import { describeProbe } from '../runtime/probe.js';
import { PROBE_MARGIN_MS } from './health.js';
import { TOPIC, isWorkerMessage } from './protocol.js';
import type { AgentMessage } from './protocol.js';

export interface TrialOptions {
  bootstrap: string;
  app: string;
  version: string;
  releaseDir: string;
  /** The whole environment beside hotdeploy's trial variables: the apps' base and the release's env. */
  env: Record<string, string>;
  timeoutMs: number;
  /** Once ready, the trial answers this health probe through its handler; a failing probe fails the trial. */
  probe?: ProbeSpec;
  /** Aborting ends the trial (and its process) at once, as a failure. */
  signal?: AbortSignal;
}

/** `probe`: the trial booted, and its health probe failed (`reason` says how). */
export type TrialResult = { ok: true; durationMs: number } | { ok: false; reason: string; durationMs: number; probe?: true };

/**
 * Boots a release once, beside the live workers, before any reload touches them. With pm2 7.0.4,
 * `pm2 reload` kills the old workers after `listen_timeout` even when the new code
 * never becomes ready, so PM2 cannot be trusted to protect the running release. The trial runs the
 * same bootstrap outside PM2 on port 0 and must reach `ready` within the deadline; one that does not
 * is killed at once (SIGKILL: a process stuck in a module's evaluation runs no signal handler), and
 * the reason names the module it was evaluating when it said. With a probe, a trial that reached
 * `ready` must also pass it (a release whose handler answers 500 is never reloaded onto the workers).
 */
export function trialStart(options: TrialOptions): Promise<TrialResult> {
  const started = Date.now();
  const child = fork(options.bootstrap, [], {
    env: {
      ...options.env,
      PORT: '0',
      HOTDEPLOY_APP: options.app,
      HOTDEPLOY_TRIAL_DIR: options.releaseDir,
      HOTDEPLOY_TRIAL_VERSION: options.version,
      HOTDEPLOY_KILL_TIMEOUT_MS: '1000',
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2_000); });

  return new Promise<TrialResult>((resolve) => {
    let settled = false;
    let loading: string | undefined;
    const finish = (result: TrialResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop(child, result.ok);
      resolve(result);
    };
    const fail = (reason: string): void => finish({ ok: false, reason, durationMs: Date.now() - started });
    let timer = setTimeout(() => {
      const evaluating = loading === undefined ? '' : ` (evaluating ${loading})`;
      fail(`not ready within ${options.timeoutMs} ms${evaluating}${tail(stderr)}`);
    }, options.timeoutMs);
    const ready = (): void => {
      const { probe } = options;
      if (!probe) return finish({ ok: true, durationMs: Date.now() - started });
      clearTimeout(timer);
      timer = setTimeout(() => fail(`ready, but did not answer the health probe within ${probe.timeoutMs + PROBE_MARGIN_MS} ms`), probe.timeoutMs + PROBE_MARGIN_MS);
      const request: AgentMessage = { kind: 'probe', requestId: TRIAL_PROBE, probe };
      child.send({ topic: TOPIC, data: request }, (err) => { if (err) fail(`the health probe could not be sent: ${err.message}`); });
    };
    child.on('message', (raw: unknown) => {
      if (raw === 'ready') return ready();
      const message = (raw as { data?: unknown } | null)?.data;
      if (!isWorkerMessage(message)) return;
      if (message.kind === 'boot-failed') fail(message.error.message);
      if (message.kind === 'loading') loading = message.module;
      if (message.kind === 'probed' && message.requestId === TRIAL_PROBE && options.probe) {
        if (message.probe.ok) finish({ ok: true, durationMs: Date.now() - started });
        else finish({ ok: false, probe: true, reason: describeProbe(options.probe, message.probe), durationMs: Date.now() - started });
      }
    });
    child.on('error', (err) => fail(err.message));
    options.signal?.addEventListener('abort', () => fail('abandoned'), { once: true });
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code}) before it was ready${tail(stderr)}`));
  });
}

const TRIAL_PROBE = 'trial-probe';

/** A trial that booted closes gracefully; one that did not is killed. */
function stop(child: ReturnType<typeof fork>, booted: boolean): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (!booted) return void child.kill('SIGKILL');
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  timer.unref();
  child.once('exit', () => clearTimeout(timer));
}

function tail(stderr: string): string {
  const last = stderr.trim().split('\n').slice(-3).join(' | ');
  return last ? `: ${last}` : '';
}
