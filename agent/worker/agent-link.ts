import net from 'node:net';
import { encodeLine, lineReader } from '../pm2/protocol.js';
import type { WorkerMessage } from '../pm2/protocol.js';

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 5_000;

export interface AgentLink {
  /** Stops reconnecting and closes the connection (a worker shutting down takes no more updates). */
  close(): void;
}

/**
 * The worker's end of its direct link to the host agent (agent/pm2/worker-links.ts): connects to
 * `socketPath`, introduces itself with `hello()`, hands every line to `onMessage` with a `reply` that
 * answers on the same connection, and reconnects with a growing delay when the agent goes away (it
 * restarts with the deploy service). The link never keeps the worker alive.
 */
export function connectAgentLink(socketPath: string, hello: () => WorkerMessage,
  onMessage: (value: unknown, reply: (message: WorkerMessage) => Promise<void>) => void): AgentLink {
  let closed = false;
  let socket: net.Socket | undefined;
  let retryMs = FIRST_RETRY_MS;
  let timer: NodeJS.Timeout | undefined;

  const connect = (): void => {
    if (closed) return;
    const s = net.createConnection(socketPath);
    socket = s;
    s.unref();
    s.setEncoding('utf8');
    s.on('connect', () => {
      retryMs = FIRST_RETRY_MS;
      s.write(encodeLine(hello()));
    });
    // Answers go back on the connection the request came on.
    const reply = (message: WorkerMessage): Promise<void> => new Promise((resolve) => {
      if (!s.writable) return resolve();
      s.write(encodeLine(message), () => resolve());
    });
    s.on('data', lineReader((value) => onMessage(value, reply)));
    s.on('error', () => undefined);
    s.on('close', () => {
      if (socket === s) socket = undefined;
      if (closed) return;
      timer = setTimeout(connect, retryMs);
      timer.unref();
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
    });
  };
  connect();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.destroy();
    },
  };
}
