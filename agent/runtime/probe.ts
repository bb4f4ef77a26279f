import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Duplex } from 'node:stream';
import type { ProbeResult, ProbeSpec } from '../messages.js';

/** How much of the body a probe keeps (the reason quotes its start). */
const BODY_START_BYTES = 512;

/**
 * One end of an in-memory connection: what is written to it is read from its peer. It looks enough
 * like a loopback TCP socket (addresses, no-op socket options) for an app that reads `req.socket`.
 */
class MemorySocket extends Duplex {
  peer: MemorySocket | undefined;
  readonly remoteAddress = '127.0.0.1';
  readonly remoteFamily = 'IPv4';
  readonly remotePort = 0;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 0;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.peer?.push(chunk);
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.peer?.push(null);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = undefined;
    if (peer && !peer.destroyed) peer.destroy();
    done(err);
  }

  setTimeout(): this { return this; }
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}

function memoryConnection(): [MemorySocket, MemorySocket] {
  const a = new MemorySocket();
  const b = new MemorySocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/**
 * A GET of `spec.path` answered by `handler` exactly as a request from the network would be — Node's
 * HTTP server parses it and builds the `IncomingMessage` / `ServerResponse` pair, Node's client
 * parses the answer — over an in-memory connection instead of a socket: workers of one app share
 * one port, so a request over the network could be answered by any of them.
 */
export function probe(handler: (req: IncomingMessage, res: ServerResponse) => void, spec: ProbeSpec): Promise<ProbeResult> {
  const started = performance.now();
  const server = http.createServer(handler);
  const [serverSide, clientSide] = memoryConnection();
  server.emit('connection', serverSide);
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let kept = 0;
    const finish = (status: number, error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clientSide.destroy();
      const bodyStart = Buffer.concat(chunks).subarray(0, BODY_START_BYTES).toString('utf8');
      const ok = error === undefined && passes(status, spec.expect);
      resolve({ ok, status, bodyStart, durationMs: performance.now() - started, ...(error === undefined ? {} : { error }) });
    };
    const timer = setTimeout(() => finish(0, `no answer within ${spec.timeoutMs} ms`), spec.timeoutMs);
    const req = http.request({
      path: spec.path,
      method: 'GET',
      headers: { host: 'localhost', 'user-agent': 'hotdeploy-health-probe', connection: 'close' },
      createConnection: () => clientSide,
    }, (res) => {
      res.on('data', (chunk: Buffer) => {
        if (kept < BODY_START_BYTES) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      res.on('end', () => finish(res.statusCode ?? 0));
      res.on('error', (err) => finish(res.statusCode ?? 0, err.message));
    });
    req.on('error', (err) => finish(0, err.message === 'socket hang up' ? 'the app closed the connection without an answer' : err.message));
    req.end();
  });
}

/** The default expectation is any status below 500. */
export function passes(status: number, expect: readonly number[] | undefined): boolean {
  return expect === undefined ? status > 0 && status < 500 : expect.includes(status);
}

/** A failed probe in one line: `GET /health answered 500: <body start>`. */
export function describeProbe(spec: Pick<ProbeSpec, 'path'>, result: ProbeResult): string {
  if (result.skipped) return `probe skipped: ${result.skipped}`;
  const body = result.bodyStart.replace(/\s+/g, ' ').trim().slice(0, 120);
  const answered = result.status > 0 ? `answered ${result.status}${body ? `: ${body}` : ' with an empty body'}` : 'got no answer';
  return `GET ${spec.path} ${answered}${result.error ? ` (${result.error})` : ''}`;
}
