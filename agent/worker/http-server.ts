import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';

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

/** How long idle keep-alive sockets may still bring a request once the worker is closing. */
const IDLE_GRACE_MS = 1_000;

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number): Promise<OwnedServer> {
  let closing = false;
  const active = new Set<ServerResponse>();
  const server = http.createServer((req, res) => {
    // A keep-alive client of a worker being replaced must reconnect to a live one (PM2 reload): an
    // answer given while closing says `Connection: close`, so the client reconnects cleanly.
    if (closing) res.setHeader('connection', 'close');
    active.add(res);
    res.once('close', () => active.delete(res));
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
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
      return new Promise<void>((resolve) => {
        const hard = setTimeout(() => { server.closeAllConnections(); resolve(); }, deadlineMs);
        // Cutting an idle keep-alive socket races a request the client may be sending on it
        // (ECONNRESET). Under load every socket brings one more request within the grace and is
        // answered with `Connection: close`; only sockets idle that long are cut.
        const grace = setTimeout(() => server.closeIdleConnections(), Math.min(IDLE_GRACE_MS, deadlineMs / 2));
        hard.unref();
        grace.unref();
        // net.Server's close, not http.Server's: since Node 19 the latter also cuts idle sockets at once.
        net.Server.prototype.close.call(server, () => { clearTimeout(hard); clearTimeout(grace); resolve(); });
      });
    },
  };
}
