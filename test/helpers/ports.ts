import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A TCP port for a server that another process binds (a PM2 app's `hotdeploy.port`), or that must
 * stay refused (an unreachable NATS server). A server of the test itself listens on port 0 instead.
 *
 * Listening on port 0, closing and handing the number on is racy: the operating system may give the
 * same port to anyone before its new owner binds it (another test's `listen(0)`, the local end of
 * an outgoing connection). This takes ports below the system's ephemeral range, which it never hands
 * out by itself, and claims each with a lock file that every test process on the machine respects
 * (this run's other workers, other checkouts' runs), then checks the port can be bound. The claim
 * lasts until this process exits; a claim whose process is gone is taken over.
 */
export async function freePort(): Promise<number> {
  const [low, high] = reservedRange();
  const span = high - low + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = low + ((start + i) % span);
    if (!claim(port)) continue;
    if (await bindable(port)) return port;
    release(port);
  }
  throw new Error(`no free port between ${low} and ${high}`);
}

const LOCKS = path.join(os.tmpdir(), 'hotdeploy-test-ports');
const mine = new Set<number>();

/** 10,000 ports just below the ephemeral range (Linux: `ip_local_port_range`, 32768 by default). */
function reservedRange(): [number, number] {
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // Not Linux: keep the IANA default's lower neighbour.
  }
  const high = ephemeralLow - 1;
  return [Math.max(1_024, high - 9_999), high];
}

function claim(port: number): boolean {
  mkdirSync(LOCKS, { recursive: true });
  const file = path.join(LOCKS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      mine.add(port);
      if (mine.size === 1) process.once('exit', releaseAll);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!abandoned(file)) return false;
      try {
        unlinkSync(file);
      } catch {
        // Another process took it over first.
      }
    }
  }
  return false;
}

/** A lock whose process is gone (or that holds no pid: its writer died between open and write). */
function abandoned(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function release(port: number): void {
  mine.delete(port);
  try {
    unlinkSync(path.join(LOCKS, String(port)));
  } catch {
    // Already gone.
  }
}

function releaseAll(): void {
  for (const port of [...mine]) release(port);
}

/** Whether a server could listen on `port` on every interface (something outside the tests may hold it). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

