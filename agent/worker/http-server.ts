import http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import net from 'node:net';
import { TrackedResponse } from '../runtime/tracked-response.js';

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
  /**
   * A keep-alive client of a worker being replaced must reconnect to a live one (PM2 reload): a head
   * written once the worker is closing says `Connection: close` (responses in flight included), so
   * the client reconnects cleanly. Checked where the head is written (`end()` without `writeHead`
   * calls it too: `_implicitHeader`), so serving costs no per-request wrapper, set or listener.
   */
  class WorkerResponse extends TrackedResponse {
    override writeHead(
      statusCode: number,
      reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
      headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
    ): this {
      if (closing && !this.headersSent) this.setHeader('connection', 'close');
      // All three as given: Node's writeHead sorts out `(status, headers)` from `(status, reason, headers)`.
      return super.writeHead(statusCode, reason as string | undefined, headers);
    }
  }
  // The hosted app's handler is the request listener itself: the indirection is HandlerHost.handler only.
  const server = http.createServer({ ServerResponse: WorkerResponse }, handler);
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
