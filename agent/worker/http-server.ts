import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { trackConnections, trackingListener, type TrackedConnections } from '../runtime/in-flight.js';

/**
 * The listening "kernel" of a handler-mode worker (closure indirection: the server calls the
 * hosted app's stable handler, which the runtime repoints on every hot swap; the server itself
 * is never swapped).
 */
export interface OwnedServer {
  port: number;
  /** Stop accepting, let in-flight requests finish, then resolve; cut what is left at `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
  /**
   * Calls `onAnswer` for each response that finishes from now on, until the returned undo runs (a
   * health window): a `'request'` listener added only then, so serving costs nothing otherwise.
   */
  watchAnswers(onAnswer: (req: IncomingMessage, res: ServerResponse) => void): () => void;
}

/** How long idle keep-alive sockets may still bring a request once the worker is closing. */
const IDLE_GRACE_MS = 1_000;

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number): Promise<OwnedServer> {
  // The hosted app's handler is called straight from the request listener, which only records the
  // response on its connection (in-flight.ts): the indirection is HandlerHost.handler only.
  const server = http.createServer(trackingListener(handler));
  const connections = trackConnections(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    watchAnswers(onAnswer) {
      const listener = (req: IncomingMessage, res: ServerResponse): void => {
        res.once('finish', () => onAnswer(req, res));
      };
      server.prependListener('request', listener);
      return () => void server.off('request', listener);
    },
    close(deadlineMs) {
      closeKeepAlive(server, connections);
      return new Promise<void>((resolve) => {
        const hard = setTimeout(() => {
          server.closeAllConnections();
          connections.stop();
          resolve();
        }, deadlineMs);
        // Cutting an idle keep-alive socket races a request the client may be sending on it
        // (ECONNRESET). Under load every socket brings one more request within the grace and is
        // answered with `Connection: close`; only sockets idle that long are cut.
        const grace = setTimeout(() => server.closeIdleConnections(), Math.min(IDLE_GRACE_MS, deadlineMs / 2));
        hard.unref();
        grace.unref();
        // net.Server's close, not http.Server's: since Node 19 the latter also cuts idle sockets at once.
        net.Server.prototype.close.call(server, () => {
          clearTimeout(hard);
          clearTimeout(grace);
          connections.stop();
          resolve();
        });
      });
    },
  };
}

/**
 * A keep-alive client of a worker being replaced must reconnect to a live one (PM2 reload): every
 * head written from now on says `Connection: close` (Node then closes the connection after it), so
 * the client reconnects cleanly. The responses in flight get the header now, each connection's last
 * one (a pipelined earlier one may still say keep-alive: the connection closes after the last); the
 * requests still to come get it before the handler runs, from a listener added only now, so serving
 * costs nothing for it.
 */
function closeKeepAlive(server: http.Server, connections: TrackedConnections): void {
  const close = (res: ServerResponse): void => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };
  for (const socket of connections.sockets) {
    const res = connections.lastResponse(socket);
    if (res) close(res);
  }
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => close(res));
}
