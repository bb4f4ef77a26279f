import type { ActivationRequest, ActivationResult, AgentEvent, HostAgent, WorkerReport, WorkerState } from '../../agent/messages.js';

/**
 * A host agent on the service's side of the `HostAgent` seam (agent/messages.ts), for testing what
 * the service does with each kind of answer. It records every request and answers as told; the
 * real PM2 agent is tested against real PM2 daemons in its own suite.
 */
export class ScriptedAgent implements HostAgent {
  readonly requests: ActivationRequest[] = [];
  /** What to answer per version; default: succeeded, hot, one worker. */
  answers = new Map<string, Partial<ActivationResult>>();
  /** When set, activations wait for it (to hold a deployment open). */
  gate: Promise<void> | undefined;
  running = 0;
  maxRunning = 0;
  private serving: string | null = null;

  constructor(readonly host: string) {}

  async activate(request: ActivationRequest, onEvent?: (event: AgentEvent) => void): Promise<ActivationResult> {
    this.requests.push(request);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: 'phase', message: `${this.host} activating ${request.version}` });
      if (this.gate) await this.gate;
      const answer = this.answers.get(request.version) ?? {};
      const status = answer.status ?? 'succeeded';
      if (status === 'succeeded') this.serving = request.version;
      const worker: WorkerReport = {
        host: this.host, pmId: 0, pid: process.pid, version: this.serving, outcome: status === 'succeeded' ? 'hot' : status === 'failed' ? 'failed' : 'rolled-back', durationMs: 1,
      };
      onEvent?.({ deploymentId: request.deploymentId, app: request.app, type: 'worker', message: 'worker done', worker });
      return { status, path: answer.path ?? 'hot', workers: answer.workers ?? [worker], ...(answer.reason ? { reason: answer.reason } : {}) };
    } finally {
      this.running -= 1;
    }
  }

  async workers(app: string): Promise<WorkerState[]> {
    return [{ host: this.host, pmId: 0, pid: process.pid, version: this.serving, status: `online:${app}` }];
  }

  async close(): Promise<void> {}
}

/** A promise and its resolver, to hold something open until the test lets it go. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
