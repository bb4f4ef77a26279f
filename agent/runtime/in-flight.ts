import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Which requests are still in flight when the handler is repointed, at no cost per request beyond
 * one store.
 *
 * A server that tracks its connections (the worker's own, agent/worker/http-server.ts) writes on each
 * connection the response it is answering or answered last. HTTP/1.1 answers a connection's
 * requests in the order they came (node lib/_http_server.js queues a pipelined response until the
 * one before it finished), so once that last response closed, every earlier one on the connection has
 * too. The requests in flight at a swap are therefore the connections' last responses not yet
 * finished; nothing is counted while serving.
 *
 * Counting each response in and out of a handler generation would put a `ServerResponse` subclass
 * and its overrides on every request's path. The price of not counting: a finished last response
 * stays referenced by its idle connection until the next request or the close.
 */
const LAST_RESPONSE = Symbol('hotdeploy.lastResponse');

type TrackedSocket = Socket & { [LAST_RESPONSE]?: ServerResponse | null };

/** The connection sets of every tracking server of this process. */
const servers = new Set<ReadonlySet<TrackedSocket>>();

export interface TrackedConnections {
  /** The server's open connections. */
  readonly sockets: ReadonlySet<Socket>;
  /** The response each connection answers or answered last; `undefined` before its first request. */
  lastResponse(socket: Socket): ServerResponse | undefined;
  /** Forgets the server (once it closed). */
  stop(): void;
}

/**
 * Tracks `server`'s connections. Its request listener must be wrapped by `trackingListener`, which
 * records each response on its connection before the handler runs.
 */
export function trackConnections(server: Server): TrackedConnections {
  const sockets = new Set<TrackedSocket>();
  servers.add(sockets);
  server.on('connection', (socket: TrackedSocket) => {
    // Set before the first request, so every connection has the same shape from the start.
    socket[LAST_RESPONSE] = null;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    sockets,
    lastResponse: (socket) => (socket as TrackedSocket)[LAST_RESPONSE] ?? undefined,
    stop: () => void servers.delete(sockets),
  };
}

/** The request listener of a tracking server: records the response on its connection, then calls `handler`. */
export function trackingListener(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    (req.socket as TrackedSocket)[LAST_RESPONSE] = res;
    handler(req, res);
  };
}

/** Whether a tracking server recorded `res` (otherwise its closing must be watched some other way). */
export function isTracked(req: IncomingMessage, res: ServerResponse): boolean {
  return (req.socket as TrackedSocket | null)?.[LAST_RESPONSE] === res;
}

/**
 * Resolves once every response in flight now has closed: the unfinished last responses of every
 * tracking server's connections, and `others` (responses of servers that do not track). A process
 * with several tracking servers (a worker has one) waits for all of their responses: a later
 * retirement, never an early one.
 */
export function inFlightNow(others: Iterable<ServerResponse>): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const sockets of servers) {
    for (const socket of sockets) {
      const res = socket[LAST_RESPONSE];
      if (res) addWait(waits, res, socket);
    }
  }
  for (const res of others) addWait(waits, res, res.socket ?? undefined);
  return Promise.all(waits).then(() => undefined);
}

/**
 * A response has closed once it finished (everything handed to the kernel; its 'close' follows on the
 * next tick) or was destroyed, or once its connection closed: a queued pipelined response of a
 * connection that went away is never given a 'close' of its own.
 */
function addWait(waits: Promise<void>[], res: ServerResponse, socket: Socket | undefined): void {
  if (res.writableFinished || res.destroyed || socket?.destroyed) return;
  waits.push(new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('close', done);
      socket?.off('close', done);
      resolve();
    };
    res.once('close', done);
    socket?.once('close', done);
  }));
}
