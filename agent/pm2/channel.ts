import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { HotError } from '../errors.js';
import type { BusPacket, Pm2Client } from './client.js';
import { assertNever } from '../common/guards.js';
import { appOfPm2Name } from './names.js';
import { TOPIC, isWorkerMessage } from './protocol.js';
import type { AgentMessage, WorkerMessage } from './protocol.js';
import type { WorkerLinks } from './worker-links.js';

type Reply = Extract<WorkerMessage, { kind: 'updated' | 'planned' | 'pong' | 'probed' }>;
/** A worker's unasked report of how its health window ended, and the pm_id it came from. */
export type WindowMessage = Extract<WorkerMessage, { kind: 'health-window' }>;
/**
 * A request waiting for its answer; `via`: the worker's link it went out on (none: through PM2);
 * `loading`: the module the worker said it was evaluating last.
 */
interface Pending { resolve: (m: Reply) => void; reject: (err: Error) => void; pmId: number; via?: Socket; loading?: string }
type Request = Exclude<AgentMessage, { kind: 'link' }> extends infer M ? M extends AgentMessage ? Omit<M, 'requestId'> : never : never;

/** A deadline passed while a worker was evaluating `module` (when it said so). */
export type WorkerTimeout = HotError & { module?: string };

/**
 * Request/answer with the workers: over the worker's direct link when it has one (worker-links.ts),
 * else over PM2: requests go out with `sendDataToProcessId`, answers come back on the daemon's bus.
 * Answers are matched by request id, and only from the worker the request went to (PM2 names the
 * sender on its bus; a link speaks for its own worker only). A request that goes through PM2 also
 * offers that worker a link. Boot reports (`booted` / `boot-failed`) are kept so a health gate can
 * say why a worker did not come up.
 */
export class WorkerChannel {
  private readonly pending = new Map<string, Pending>();
  private readonly bootFailures = new Map<string, { at: number; version: string; message: string }>();
  private readonly booted = new Map<number, number>();
  private readonly windowListeners = new Set<(message: WindowMessage, pmId: number) => void>();

  constructor(private readonly client: Pm2Client, private readonly links?: WorkerLinks) {
    client.on('message', (packet: BusPacket) => {
      const pmId = Number(packet.process?.pm_id);
      if (Number.isInteger(pmId)) this.onPacket(packet.data, pmId, appOfPm2Name(packet.process?.name ?? ''));
    });
    links?.onClose((socket) => {
      for (const request of this.pending.values()) {
        if (request.via === socket) request.reject(new HotError('HOT_ERR_WORKER_GONE', `worker ${request.pmId}`));
      }
    });
  }

  /** A message from worker `pmId` (PM2's bus or its direct link); `app`: PM2's name for it, if known. */
  onPacket(message: unknown, pmId: number, app = ''): void {
    if (!isWorkerMessage(message)) return;
    switch (message.kind) {
      case 'updated':
      case 'planned':
      case 'pong':
      case 'probed': {
        const pending = this.pending.get(message.requestId);
        if (pending?.pmId === pmId) pending.resolve(message);
        return;
      }
      case 'loading': {
        const pending = this.pending.get(message.requestId);
        if (pending?.pmId === pmId) pending.loading = message.module;
        return;
      }
      case 'booted':
        this.booted.set(pmId, message.pid);
        return;
      case 'health-window':
        // A worker speaks for itself only (its link, or PM2's name for the sender).
        if (message.pmId !== pmId) return;
        for (const listener of this.windowListeners) listener(message, pmId);
        return;
      case 'hello':
        return;
      case 'boot-failed':
        this.bootFailures.set(app, { at: Date.now(), version: message.version, message: message.error.message });
        return;
      default:
        assertNever(message);
    }
  }

  /** Health-window reports from the workers, until the returned undo runs. */
  onWindow(listener: (message: WindowMessage, pmId: number) => void): () => void {
    this.windowListeners.add(listener);
    return () => this.windowListeners.delete(listener);
  }

  /** The last boot failure PM2's workers of `app` reported since `since` (epoch ms), on `version`. */
  bootFailure(app: string, version: string, since: number): string | undefined {
    const failure = this.bootFailures.get(app);
    return failure && failure.at >= since && failure.version === version ? failure.message : undefined;
  }

  /** Whether the process `pid` reported itself booted as worker `pmId`. */
  hasBooted(pmId: number, pid: number | null): boolean {
    return pid !== null && this.booted.get(pmId) === pid;
  }

  /**
   * `pid`: the process PM2 reports for `pmId`; the direct link is used only when it is that process.
   * Without it (or a link) the request goes through PM2, which knows the worker by pm_id alone.
   */
  async request(pmId: number, message: Request, timeoutMs: number, pid?: number | null): Promise<Reply> {
    const requestId = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const entry: Pending = { resolve: () => undefined, reject: () => undefined, pmId };
    const answer = new Promise<Reply>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
      this.pending.set(requestId, entry);
      timer = setTimeout(() => {
        const err: WorkerTimeout = new HotError('HOT_ERR_TIMEOUT', `worker ${pmId} did not answer within ${timeoutMs} ms`);
        if (entry.loading !== undefined) err.module = entry.loading;
        reject(err);
      }, timeoutMs);
    });
    try {
      const full = { ...message, requestId } as AgentMessage;
      entry.via = this.links?.send(pmId, pid, full);
      if (!entry.via) {
        await this.client.send(pmId, TOPIC, full);
        if (pid) this.offerLink(pmId, pid);
      }
      return await Promise.race([answer, this.client.lost]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(requestId);
    }
  }

  /** Offers worker `pmId` (process `pid`) a direct link, through PM2; the next requests use it. */
  private offerLink(pmId: number, pid: number): void {
    const nonce = this.links?.offer(pmId, pid);
    if (nonce) this.client.send(pmId, TOPIC, { kind: 'link', nonce }).catch(() => undefined);
  }
}
