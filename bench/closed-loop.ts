import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r?$/im;
/** How long the answers in flight when a slice ends may take. */
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Figure 4's load: `connections` keep-alive connections to one server, each sending its next
 * `GET /` as soon as the answer arrived, but only while a slice runs. Two loops (bare, hosted) stay
 * open side by side and take turns in short slices, so a change in the shared machine's speed falls
 * on both sides alike.
 *
 * Not autocannon: at this figure's ~30,000 answers a second autocannon needs 65–84 % of a core, the
 * server then stands idle 4–12 % of the time waiting for requests, and some of a slower server's
 * cost vanishes into that idle time. This loop parses no more than a status line and a Content-Length
 * (52–70 % of a core here), so the server is busy throughout and req/s is the server's.
 */
export class ClosedLoop {
  private readonly connections: Connection[];
  private active = false;
  private answers = 0;
  private failure: Error | undefined;
  private closed = false;
  private onIdle: (() => void) | undefined;

  private constructor(port: number, connections: number) {
    this.connections = Array.from({ length: connections }, () => new Connection(port, this));
  }

  static async open(port: number, connections: number): Promise<ClosedLoop> {
    const loop = new ClosedLoop(port, connections);
    try {
      await Promise.all(loop.connections.map((c) => c.connected));
    } catch (err) {
      loop.close();
      throw err;
    }
    return loop;
  }

  /** Loads the server for `ms` and returns its answers per second; the answers still in flight then are awaited, not counted. */
  async slice(ms: number): Promise<number> {
    if (this.failure) throw this.failure;
    this.answers = 0;
    this.active = true;
    const started = performance.now();
    for (const c of this.connections) c.send();
    await delay(ms);
    // Timers fire by the event loop's millisecond clock, which can run a fraction of a millisecond
    // ahead of performance.now(): the slice lasts at least `ms` by the clock its rate is measured on.
    while (performance.now() - started < ms) await delay(1);
    this.active = false;
    const elapsed = performance.now() - started;
    const answers = this.answers;
    await this.drained();
    if (this.failure) throw this.failure;
    return (answers / elapsed) * 1_000;
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections) c.socket.destroy();
  }

  /** @internal A connection got a whole answer. */
  answered(c: Connection): void {
    if (this.active) {
      this.answers++;
      c.send();
    } else if (this.onIdle && this.connections.every((x) => !x.busy)) {
      this.onIdle();
    }
  }

  /** @internal A connection failed: the slice running or next ends with this error. */
  fail(err: Error): void {
    if (this.closed) return;
    this.failure ??= err;
    this.active = false;
    this.onIdle?.();
  }

  private drained(): Promise<void> {
    if (this.failure || this.connections.every((c) => !c.busy)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onIdle = undefined;
        reject(new Error(`answers still missing ${DRAIN_TIMEOUT_MS} ms after the slice ended`));
      }, DRAIN_TIMEOUT_MS);
      this.onIdle = () => {
        clearTimeout(timer);
        this.onIdle = undefined;
        resolve();
      };
    });
  }
}

/** One keep-alive connection: at most one request outstanding; answers framed by Content-Length. */
class Connection {
  readonly socket: net.Socket;
  readonly connected: Promise<void>;
  busy = false;
  private pending: Buffer | undefined;

  constructor(port: number, private readonly loop: ClosedLoop) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => loop.fail(err));
    this.socket.on('close', () => loop.fail(new Error('the server closed a keep-alive connection')));
  }

  send(): void {
    this.busy = true;
    this.socket.write(REQUEST);
  }

  private onData(chunk: Buffer): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    for (;;) {
      const headEnd = data.indexOf(HEAD_END);
      if (headEnd < 0) break;
      const head = data.toString('latin1', 0, headEnd);
      if (!head.startsWith('HTTP/1.1 200 ')) return this.loop.fail(new Error(`answer ${JSON.stringify(head.split('\r\n')[0])}, not 200`));
      const length = CONTENT_LENGTH.exec(head)?.[1];
      if (length === undefined) return this.loop.fail(new Error('an answer without Content-Length (only those are framed here)'));
      const end = headEnd + HEAD_END.length + Number(length);
      if (data.length < end) break;
      data = data.subarray(end);
      this.busy = false;
      this.loop.answered(this);
      if (data.length === 0) return;
    }
    this.pending = data;
  }
}
