import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { HotError } from '../errors.js';
import type { BusPacket, Pm2Client } from './client.js';
import { assertNever } from '../common/guards.js';
import { TOPIC, isWorkerMessage } from './protocol.js';
import type { AgentMessage, WorkerMessage } from './protocol.js';
import type { WorkerLinks } from './worker-links.js';

type Reply = Extract<WorkerMessage, { requestId: string }>;
/** A request waiting for its answer; `via`: the worker's link it went out on (none: through PM2). */
interface Pending { resolve: (m: Reply) => void; reject: (err: Error) => void; pmId: number; via?: Socket }
type Request = AgentMessage extends infer M ? M extends AgentMessage ? Omit<M, 'requestId'> : never : never;

/**
 * Request/answer with the workers: over the worker's direct link when it has one (worker-links.ts),
 * else over PM2: requests go out with `sendDataToProcessId`, answers come back on the daemon's bus.
 * Answers are matched by request id. Boot reports (`booted` / `boot-failed`) are kept per app so
 * a health gate can say why a worker did not come up.
 */
export class WorkerChannel {
  private readonly pending = new Map<string, Pending>();
  private readonly bootFailures = new Map<string, { at: number; version: string; message: string }>();

  constructor(private readonly client: Pm2Client, private readonly links?: WorkerLinks) {
    client.on('message', (packet: BusPacket) => this.onPacket(packet.data, packet.process?.name ?? ''));
    links?.onClose((socket) => {
      for (const request of this.pending.values()) {
        if (request.via === socket) request.reject(new HotError('HOT_ERR_WORKER_GONE', `worker ${request.pmId}`));
      }
    });
  }

  /** A worker's message from PM2's bus or from its direct link (`app`: PM2's name of the worker's app). */
  onPacket(message: unknown, app: string): void {
    if (!isWorkerMessage(message)) return;
    switch (message.kind) {
      case 'updated':
      case 'planned':
      case 'pong':
      case 'probed':
        this.pending.get(message.requestId)?.resolve(message);
        return;
      case 'booted':
      case 'hello':
      case 'health-window':
        return;
      case 'boot-failed':
        this.bootFailures.set(app, { at: Date.now(), version: message.version, message: message.error.message });
        return;
      default:
        assertNever(message);
    }
  }

  /** The last boot failure PM2's workers of `app` reported since `since` (epoch ms), on `version`. */
  bootFailure(app: string, version: string, since: number): string | undefined {
    const failure = this.bootFailures.get(app);
    return failure && failure.at >= since && failure.version === version ? failure.message : undefined;
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
      timer = setTimeout(() => reject(new HotError('HOT_ERR_TIMEOUT', `worker ${pmId} did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const full = { ...message, requestId } as AgentMessage;
      entry.via = this.links?.send(pmId, pid, full);
      if (!entry.via) await this.client.send(pmId, TOPIC, full);
      return await Promise.race([answer, this.client.lost]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(requestId);
    }
  }
}
