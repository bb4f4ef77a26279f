import { randomUUID } from 'node:crypto';
import { HotError } from '../errors.js';
import type { BusPacket, Pm2Client } from './client.js';
import { TOPIC, assertNever, isWorkerMessage } from './protocol.js';
import type { AgentMessage, WorkerMessage } from './protocol.js';

type Reply = Extract<WorkerMessage, { requestId: string }>;
type Request = AgentMessage extends infer M ? M extends AgentMessage ? Omit<M, 'requestId'> : never : never;

/**
 * Request/answer over PM2: requests go out with `sendDataToProcessId`, answers come back on the
 * daemon's bus, matched by request id. Boot reports (`booted` / `boot-failed`) are kept per app so
 * a health gate can say why a worker did not come up.
 */
export class WorkerChannel {
  private readonly pending = new Map<string, { resolve: (m: Reply) => void }>();
  private readonly bootFailures = new Map<string, { at: number; version: string; message: string }>();

  constructor(private readonly client: Pm2Client) {
    client.on('message', (packet: BusPacket) => this.onPacket(packet));
  }

  private onPacket(packet: BusPacket): void {
    const message = packet.data;
    if (!isWorkerMessage(message)) return;
    switch (message.kind) {
      case 'updated':
      case 'planned':
      case 'pong':
        this.pending.get(message.requestId)?.resolve(message);
        return;
      case 'booted':
        return;
      case 'boot-failed':
        this.bootFailures.set(packet.process?.name ?? '', { at: Date.now(), version: message.version, message: message.error.message });
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

  async request(pmId: number, message: Request, timeoutMs: number): Promise<Reply> {
    const requestId = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<Reply>((resolve, reject) => {
      this.pending.set(requestId, { resolve });
      timer = setTimeout(() => reject(new HotError('HOT_ERR_TIMEOUT', `worker ${pmId} did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await this.client.send(pmId, TOPIC, { ...message, requestId });
      return await Promise.race([answer, this.client.lost]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(requestId);
    }
  }
}
