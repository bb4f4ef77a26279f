import net from 'node:net';
import { encodeLine, lineReader } from '../pm2/protocol.js';
import type { WorkerMessage } from '../pm2/protocol.js';

export interface AgentLink {
  /** Closes the connection (a worker shutting down takes no more updates; a new offer replaces it). */
  close(): void;
}

/**
 * The worker's end of its direct link to the host agent (agent/pm2/worker-links.ts), made when the
 * agent offers one through PM2's IPC: connects to `socketPath`, introduces itself with `hello` (which
 * carries the agent's nonce), and hands every line to `onMessage` with a `reply` that answers on the
 * same connection. One link is one connection: when it closes (the agent restarted), the agent offers
 * a new one the next time it reaches the worker through PM2. The link never keeps the worker alive.
 */
export function connectAgentLink(socketPath: string, hello: WorkerMessage,
  onMessage: (value: unknown, reply: (message: WorkerMessage) => Promise<void>) => void): AgentLink {
  const s = net.createConnection(socketPath);
  s.unref();
  s.setEncoding('utf8');
  s.on('connect', () => s.write(encodeLine(hello)));
  // Answers go back on the connection the request came on.
  const reply = (message: WorkerMessage): Promise<void> => new Promise((resolve) => {
    if (!s.writable) return resolve();
    s.write(encodeLine(message), () => resolve());
  });
  s.on('data', lineReader((value) => onMessage(value, reply), () => s.destroy()));
  s.on('error', () => undefined);
  return { close: () => s.destroy() };
}
