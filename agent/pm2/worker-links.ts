import { chmod, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { encodeLine, isWorkerMessage, lineReader } from './protocol.js';
import type { AgentMessage, WorkerMessage } from './protocol.js';

/** Unix socket paths are limited to 108 bytes (sun_path) on Linux, 104 on macOS. */
const MAX_SOCKET_PATH = 100;

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

/**
 * Direct links from the app's workers to the agent (issue 6). Through PM2 an update goes agent →
 * daemon (`sendDataToProcessId`, an RPC) → worker IPC, and the answer worker → daemon → bus: two hops
 * through a daemon that is also the cluster master handing every new connection to a worker, so under
 * traffic the update waited there for milliseconds. Each worker the bootstrap runs connects here at
 * boot (HOTDEPLOY_AGENT_SOCKET) and says which PM2 worker it is; requests to it then go straight over
 * that connection. PM2's channel stays the fallback: a worker without a link (started before this
 * existed, not yet connected, or a pid other than the one PM2 reports) is reached through the daemon.
 */
export class WorkerLinks {
  private server: net.Server | undefined;
  private readonly links = new Map<number, Link>();
  private readonly sockets = new Set<net.Socket>();
  private readonly closeListeners = new Set<(socket: net.Socket) => void>();

  constructor(readonly socketPath: string | undefined, private readonly onMessage: (message: WorkerMessage) => void) {}

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
    // Connecting needs write permission on the socket: its owner only, whatever the umask and the
    // data directory's mode (a worker's link is trusted with its answers).
    await chmod(socketPath, 0o600);
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.unref();
    socket.setEncoding('utf8');
    let pmId: number | undefined;
    socket.on('data', lineReader((value) => {
      if (!isWorkerMessage(value)) return;
      if (value.kind === 'hello') {
        pmId = value.pmId;
        // A restarted worker (same pm_id, new pid) replaces its predecessor's link.
        this.links.set(value.pmId, { pid: value.pid, socket });
        return;
      }
      this.onMessage(value);
    }));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (pmId !== undefined && this.links.get(pmId)?.socket === socket) this.links.delete(pmId);
      for (const listener of this.closeListeners) listener(socket);
    });
  }

  /**
   * Writes `message` on the link of worker `pmId` when that link is the process `pid` (PM2's view of
   * the worker); returns the link's socket, or undefined when there is none (send through PM2).
   */
  send(pmId: number, pid: number | null | undefined, message: AgentMessage): net.Socket | undefined {
    const link = this.links.get(pmId);
    if (!link || pid === null || pid === undefined || link.pid !== pid || !link.socket.writable) return undefined;
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
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (server && this.socketPath) await rm(this.socketPath, { force: true });
  }
}
