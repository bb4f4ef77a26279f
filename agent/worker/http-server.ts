import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The listening "kernel" of a handler-mode worker (DESIGN.md: closure indirection — the server calls
 * the hosted app's stable handler, which the runtime repoints on every hot swap; the server itself
 * is never swapped).
 */
export interface OwnedServer {
  port: number;
  /** Stop accepting, let in-flight requests finish, then resolve; cut what is left at `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
}

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number): Promise<OwnedServer> {
  let closing = false;
  const server = http.createServer((req, res) => {
    // A keep-alive client of a worker being replaced must reconnect to a live one (PM2 reload),
    // so answers given while closing say so instead of leaving the socket to be cut.
    if (closing) res.shouldKeepAlive = false;
    res.once('finish', () => { if (closing) server.closeIdleConnections(); });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close(deadlineMs) {
      closing = true;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.closeAllConnections(); resolve(); }, deadlineMs);
        timer.unref();
        // Node ≥ 19: close() also closes idle keep-alive sockets; busy ones end after their response.
        server.close(() => { clearTimeout(timer); resolve(); });
      });
    },
  };
}
