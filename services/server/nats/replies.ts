import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { parseReply, type HostReply } from '../../../agent/nats/protocol.js';

type ReplyType = HostReply['type'];

/**
 * The replies of one deployment (`<prefix>.reply.<deploymentId>`, core NATS). Subscribed before
 * the first command goes out and buffered, so a fast host's answer is never missed; each phase then
 * waits for the hosts it asked, up to its own deadline (timeouts per phase).
 */
export class Replies {
  private readonly sub: Subscription;
  private readonly received = new Map<string, HostReply>();
  private wake: (() => void) | undefined;

  constructor(nc: NatsConnection, subject: string) {
    this.sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        const reply = parseReply(msg.data);
        if (!reply) return;
        this.received.set(`${reply.type}:${reply.host}`, reply);
        this.wake?.();
      },
    });
  }

  /** Waits until every host in `hosts` answered with one of `types`, or `timeoutMs` passed. */
  async collect<T extends ReplyType>(types: T[], hosts: string[], timeoutMs: number): Promise<Map<string, Extract<HostReply, { type: T }>>> {
    const deadline = Date.now() + timeoutMs;
    const found = (): Map<string, Extract<HostReply, { type: T }>> => {
      const out = new Map<string, Extract<HostReply, { type: T }>>();
      for (const host of hosts) {
        for (const type of types) {
          const reply = this.received.get(`${type}:${host}`);
          if (reply) out.set(host, reply as Extract<HostReply, { type: T }>);
        }
      }
      return out;
    };
    let answers = found();
    while (answers.size < hosts.length && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      answers = found();
    }
    this.wake = undefined;
    return answers;
  }

  close(): void {
    this.sub.unsubscribe();
  }
}
