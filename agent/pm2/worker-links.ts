import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { encodeLine, isWorkerMessage, lineReader } from './protocol.js';
import type { AgentMessage, WorkerMessage } from './protocol.js';

/** Unix socket paths are limited to 108 bytes (sun_path) on Linux, 104 on macOS. */
const MAX_SOCKET_PATH = 100;
/** A connection that has not introduced itself with a valid nonce by then is closed. */
const HELLO_TIMEOUT_MS = 5_000;
/** An offered nonce not used by then is forgotten. */
const NONCE_TTL_MS = 60_000;
/** A worker that has not used its nonce by then (it was still booting) is offered another. */
const REOFFER_MS = 2_000;

/**
 * `<dataDir>/agent/workers.sock`, inside the data directory (mode 0700: only its owner connects);
 * undefined when that path is too long for a Unix socket (then workers are reached through PM2 only).
 */
export function linkSocketPath(dataDir: string): string | undefined {
  const file = path.join(dataDir, 'agent', 'workers.sock');
  return Buffer.byteLength(file) <= MAX_SOCKET_PATH ? file : undefined;
}

interface Link {
  pid: number;
  socket: net.Socket;
}

interface Offered {
  pmId: number;
  pid: number;
  at: number;
}

/**
 * Direct links from the app's workers to the agent. Through PM2 an update goes agent → daemon
 * (`sendDataToProcessId`, an RPC) → worker IPC, and the answer worker → daemon → bus: two hops
 * through a daemon that is also the cluster master handing every new connection to a worker, so under
 * traffic the update waited there for milliseconds. A link skips both.
 *
 * Every process of the same user can connect to the socket, so a connection is trusted only as the
 * worker the agent offered it to: the agent sends a random nonce to one pm_id through PM2's own IPC
 * (`offer`; PM2 delivers it to the process it runs as that pm_id, the pid the agent saw), and the
 * connection's first line must be a `hello` naming that pm_id and pid with that nonce. A nonce is
 * used once. From then on the link speaks only for that worker: a message naming another pm_id or
 * pid closes it, and the agent matches answers only to requests it sent that worker. A line over
 * `MAX_LINE`, a first line that is not a valid hello, or no hello within 5 s closes the connection
 * too; lines are parsed in linear time, so a flood costs the agent what reading 1 MiB costs.
 */
export class WorkerLinks {
  private server: net.Server | undefined;
  private readonly links = new Map<number, Link>();
  private readonly offered = new Map<string, Offered>();
  private readonly sockets = new Set<net.Socket>();
  private readonly closeListeners = new Set<(socket: net.Socket) => void>();

  constructor(readonly socketPath: string | undefined, private readonly onMessage: (message: WorkerMessage, pmId: number) => void) {}

  /** Listens on the socket (a stale one of an earlier agent is replaced). */
  async listen(): Promise<void> {
    if (this.socketPath === undefined || this.server) return;
    const socketPath = this.socketPath;
    await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
    await rm(socketPath, { force: true });
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // The links never keep the agent's process alive; `close` ends them.
    server.unref();
    this.server = server;
    // Connecting needs write permission on the socket: its owner only, whatever the umask.
    await chmod(socketPath, 0o600);
  }

  /**
   * A nonce for the worker `pmId` whose process is `pid` (as PM2 reports it), to be sent to it
   * through PM2; undefined when the socket is not listening or the worker has a link already.
   */
  offer(pmId: number, pid: number): string | undefined {
    if (!this.server || this.links.get(pmId)?.pid === pid) return undefined;
    const now = Date.now();
    for (const [nonce, o] of this.offered) {
      // One offer in flight per worker: requests in a row (a health gate's pings) do not replace it.
      if (o.pmId === pmId && o.pid === pid && now - o.at < REOFFER_MS) return undefined;
      if (o.pmId === pmId || now - o.at > NONCE_TTL_MS) this.offered.delete(nonce);
    }
    const nonce = randomBytes(18).toString('base64url');
    this.offered.set(nonce, { pmId, pid, at: now });
    return nonce;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.unref();
    socket.setEncoding('utf8');
    let link: Offered | undefined;
    const hello = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    hello.unref();
    socket.on('data', lineReader((value) => {
      if (socket.destroyed) return;
      if (!link) {
        link = this.verify(value);
        clearTimeout(hello);
        if (!link) return void socket.destroy();
        // A restarted worker (same pm_id, new pid) replaces its predecessor's link.
        this.links.get(link.pmId)?.socket.destroy();
        this.links.set(link.pmId, { pid: link.pid, socket });
        return;
      }
      if (!isWorkerMessage(value)) return;
      if (value.pmId !== link.pmId || value.pid !== link.pid) return void socket.destroy();
      this.onMessage(value, link.pmId);
    }, () => socket.destroy()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(hello);
      this.sockets.delete(socket);
      if (link && this.links.get(link.pmId)?.socket === socket) this.links.delete(link.pmId);
      for (const listener of this.closeListeners) listener(socket);
    });
  }

  /** The worker a first line introduces, if it is a hello with a nonce offered to that pm_id and pid. */
  private verify(value: unknown): Offered | undefined {
    if (!isWorkerMessage(value) || value.kind !== 'hello') return undefined;
    const offered = this.offered.get(value.nonce);
    if (!offered || offered.pmId !== value.pmId || offered.pid !== value.pid || Date.now() - offered.at > NONCE_TTL_MS) return undefined;
    this.offered.delete(value.nonce);
    return offered;
  }

  /** Whether worker `pmId` has a link from process `pid`. */
  has(pmId: number, pid: number | null | undefined): boolean {
    const link = this.links.get(pmId);
    return link !== undefined && pid !== null && pid !== undefined && link.pid === pid && link.socket.writable;
  }

  /**
   * Writes `message` on the link of worker `pmId` when that link is the process `pid` (PM2's view of
   * the worker); returns the link's socket, or undefined when there is none (send through PM2).
   */
  send(pmId: number, pid: number | null | undefined, message: AgentMessage): net.Socket | undefined {
    if (!this.has(pmId, pid)) return undefined;
    const link = this.links.get(pmId)!;
    link.socket.write(encodeLine(message));
    return link.socket;
  }

  /** Called with each link's socket when it closes (its pending requests will never be answered). */
  onClose(listener: (socket: net.Socket) => void): void {
    this.closeListeners.add(listener);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.links.clear();
    this.offered.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (server && this.socketPath) await rm(this.socketPath, { force: true });
  }
}
