/**
 * The unpacker's first thread: keeps the upload (writes the .tgz to its file and hashes it) and
 * gunzips it as it arrives, handing the tar bytes to the writer (extract-worker.ts) through its
 * port. Inflating is a third of the unpacker's work on an incompressible bundle (docs/BENCHMARKS.md,
 * figure 6); on its own thread it overlaps the writer's file system calls, as gzip overlaps tar in
 * `tar -xzf`. Keeping the .tgz here, not on the service's event loop, takes a copy, a hash and a
 * thread-pool round trip per block off the loop that serves every other request.
 *
 * minizlib (node-tar's own zlib wrapper) inflates synchronously, chunk by chunk: node:zlib has no
 * public synchronous streaming API, and its asynchronous one would add a thread hop per chunk.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { type MessagePort, parentPort } from 'node:worker_threads';
import { Gunzip, type ZlibOptions } from 'minizlib';
import { assertNever } from '../../../agent/common/guards.js';
import type { ExtractLimits } from './extract-checks.js';
import { BLOCK_BYTES, BlockPool } from './blocks.js';
import { workerError, type FromWorker, type FromWriter, type StartJob, type ToInflater, type ToWriter, type WorkerError } from './extract-protocol.js';

/** The .tgz is fed to zlib this much at a time: a bomb's output is bounded between the checks. */
const SLICE_BYTES = 32 * 1024;
/** Tar bytes sent and not yet parsed; past this the inflater waits for the writer. */
const WRITER_MAX_IN_FLIGHT = 8 * 1024 * 1024;
/** The blocks tar bytes go to the writer in (fewer messages, fewer wake-ups); the writer sends each back. */
const blocks = new BlockPool(WRITER_MAX_IN_FLIGHT / BLOCK_BYTES + 2);
/** Tar's own bytes beyond the files' (a header, padding, maybe a pax header): a generous bound per entry. */
const META_BYTES_PER_ENTRY = 4 * 1024;

class InflateJob {
  // Passed through to node:zlib, which minizlib's types do not say: 256 KB outputs, not 16 KB ones.
  private readonly gunzip = new Gunzip({ chunkSize: 256 * 1024 } as ZlibOptions);
  private readonly queue: Uint8Array[] = [];
  private readonly cap: number;
  private head = 0;
  private block = new Uint8Array(blocks.take());
  private used = 0;
  /** Buffers of chunks used up (kept and inflated), to go back to the service with the next ack. */
  private readonly spent: ArrayBuffer[] = [];
  /** .tgz bytes inflated into the block not yet sent. */
  private compressed = 0;
  private inflated = 0;
  private writerInFlight = 0;
  private ending = false;
  /** The upload has ended (`end` came): nothing more arrives for this job. */
  private closed = false;
  private stopped = false;

  constructor(readonly id: number, limits: ExtractLimits, private readonly copy: BundleCopy | undefined, private readonly writer: MessagePort,
    private readonly acked: (bytes: number, blocks: ArrayBuffer[]) => void, private readonly kept: (msg: FromWorker) => void) {
    this.cap = limits.maxUnpackedBytes + limits.maxFiles * META_BYTES_PER_ENTRY + BLOCK_BYTES;
    this.gunzip.on('data', (out: Buffer) => this.take(out));
    // minizlib reports a corrupt or truncated stream as an 'error' event from inside write / end.
    this.gunzip.on('error', (err: unknown) => this.fail(workerError(err)));
  }

  /** Kept at once (all of it, also after the unpacking failed: the upload's sha256 is still owed), inflated in turn. */
  chunk(data: Uint8Array): void {
    const error = this.copy?.write(data);
    // Reported at once: the service ends the upload (disk full) instead of receiving the rest.
    if (error) this.kept({ type: 'kept', id: this.id, error });
    if (this.stopped) {
      this.usedUp(data);
      return this.ack(data.byteLength);
    }
    this.queue.push(data);
    this.pump();
  }

  /** Nothing more is owed or arrives: the job may be forgotten. */
  get over(): boolean {
    return this.stopped && this.closed;
  }

  end(): void {
    this.closed = true;
    const kept = this.copy?.close();
    if (kept) this.kept({ type: 'kept', id: this.id, ...kept });
    this.ending = true;
    this.pump();
  }

  /** The service gave up the upload: nothing more is kept or inflated, and the file is let go. */
  abort(): void {
    this.copy?.abandon();
    this.stop();
  }

  /** The writer's word: `inflated` bytes parsed, and with them `compressed` bytes of the .tgz. */
  parsed(inflated: number, compressed: number): void {
    this.writerInFlight -= inflated;
    if (compressed > 0) this.ack(compressed);
    this.pump();
  }

  /** The job is over (the writer settled it, or it was aborted): what is queued is acked and dropped. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const data of this.queue.splice(0)) {
      this.usedUp(data);
      this.ack(data.byteLength);
    }
    if (this.compressed > 0) this.ack(this.compressed);
    this.compressed = 0;
    // Not closed here: this may run inside the gunzip's own write (an error, a cap), which then goes on.
    setImmediate(() => this.gunzip.close());
  }

  private pump(): void {
    while (!this.stopped && this.writerInFlight <= WRITER_MAX_IN_FLIGHT) {
      const data = this.queue.shift();
      if (data === undefined) break;
      this.inflate(data);
    }
    if (this.stopped || this.queue.length > 0) return;
    // Nothing more to inflate now: what is inflated goes to the writer instead of waiting for a full block.
    this.flush();
    if (this.ending) {
      this.ending = false;
      if (this.head < 2) return this.fail(NOT_GZIP);
      this.gunzip.end();
      if (this.stopped) return;
      this.flush();
      this.post({ type: 'end', id: this.id });
    }
  }

  private inflate(data: Uint8Array): void {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // The gzip magic (it may arrive split over two chunks), checked so a plain tar, which node-tar
    // would also read, is refused.
    for (let i = 0; this.head < 2 && i < bytes.length; i++, this.head++) {
      if (bytes[i] !== GZIP_MAGIC[this.head]) {
        this.fail(NOT_GZIP);
        break;
      }
    }
    for (let at = 0; at < bytes.length && !this.stopped; at += SLICE_BYTES) this.gunzip.write(bytes.subarray(at, at + SLICE_BYTES));
    // Kept, hashed and inflated (zlib holds no input once a write returns): the buffer may be filled again.
    this.usedUp(data);
    // A chunk that ended the job is acked here: `stop` acked only what was still queued.
    if (this.stopped) this.ack(data.byteLength);
    else this.compressed += data.byteLength;
  }

  private usedUp(data: Uint8Array): void {
    if (data.buffer.byteLength === BLOCK_BYTES) this.spent.push(data.buffer as ArrayBuffer);
  }

  private ack(bytes: number): void {
    this.acked(bytes, this.spent.splice(0));
  }

  private take(out: Buffer): void {
    if (this.stopped) return;
    this.inflated += out.length;
    if (this.inflated > this.cap) {
      return this.fail({ deployCode: 'DEPLOY_ERR_UNPACKED_TOO_LARGE', detail: `the tar stream passes ${this.cap} bytes`, message: 'too large' });
    }
    for (let at = 0; at < out.length;) {
      const n = Math.min(out.length - at, BLOCK_BYTES - this.used);
      this.block.set(out.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
      if (this.used === BLOCK_BYTES) this.flush();
    }
  }

  /** What is inflated goes to the writer in its block, however full (the writer sends the block back). */
  private flush(): void {
    if (this.used === 0 && this.compressed === 0) return;
    let data = EMPTY;
    if (this.used > 0) {
      data = this.block.subarray(0, this.used);
      this.block = new Uint8Array(blocks.take());
    }
    this.writerInFlight += data.byteLength;
    this.post({ type: 'data', id: this.id, data, compressed: this.compressed }, data.byteLength > 0 ? [data.buffer as ArrayBuffer] : []);
    this.used = 0;
    this.compressed = 0;
  }

  private fail(error: WorkerError): void {
    if (this.stopped) return;
    this.post({ type: 'fail', id: this.id, error });
    this.stop();
  }

  private post(msg: ToWriter, transfer?: ArrayBuffer[]): void {
    this.writer.postMessage(msg, transfer);
  }
}

/**
 * The .tgz as received, written to its file and hashed block by block. A write error (disk full)
 * stops the copy; `write` returns it once, and the unpacking goes on until the service aborts it.
 */
class BundleCopy {
  private readonly hash = createHash('sha256');
  private fd: number | undefined;
  private bytes = 0;
  private failed = false;

  constructor(private readonly file: string) {}

  /** The error the first time a write fails; nothing before or after. */
  write(data: Uint8Array): WorkerError | undefined {
    if (this.failed) return undefined;
    try {
      this.fd ??= openSync(this.file, 'wx', 0o644);
      for (let at = 0; at < data.byteLength;) at += writeSync(this.fd, data, at);
      this.hash.update(data);
      this.bytes += data.byteLength;
      return undefined;
    } catch (err) {
      this.failed = true;
      this.abandon();
      return workerError(err);
    }
  }

  /** The file closed and its sha256, or an error; undefined when a write failed already (reported then). */
  close(): { sha256: string; bytes: number } | { error: WorkerError } | undefined {
    if (this.failed) return undefined;
    try {
      this.fd ??= openSync(this.file, 'wx', 0o644);
      closeSync(this.fd);
      this.fd = undefined;
    } catch (err) {
      this.failed = true;
      return { error: workerError(err) };
    }
    return { sha256: this.hash.digest('hex'), bytes: this.bytes };
  }

  abandon(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const EMPTY = new Uint8Array(0);
const NOT_GZIP: WorkerError = { deployCode: 'DEPLOY_ERR_NOT_GZIP', message: 'not gzip' };

/**
 * Jobs by id: the inflater holds the state of every upload it unpacks and works on whichever sent
 * data, so an upload that stalls holds none of its time. A job is forgotten once aborted, or once
 * its upload has ended and the writer has settled it.
 */
if (parentPort) {
  const service = parentPort;
  let writer: MessagePort | undefined;
  const jobs = new Map<number, InflateJob>();
  const toService = (msg: FromWorker) => service.postMessage(msg);
  const start = (msg: StartJob, port: MessagePort) => {
    const { id, keep, ...forWriter } = msg;
    jobs.set(id, new InflateJob(id, msg.limits, keep === undefined ? undefined : new BundleCopy(keep), port,
      (bytes, spent) => service.postMessage({ type: 'ack', id, bytes, ...(spent.length > 0 ? { blocks: spent } : {}) } satisfies FromWorker, spent), toService));
    port.postMessage({ ...forWriter, id } satisfies ToWriter);
  };
  const forgetIfOver = (job: InflateJob) => {
    if (job.over) jobs.delete(job.id);
  };
  service.on('message', (msg: ToInflater) => {
    if (msg.type === 'connect') {
      writer = msg.port;
      writer.on('message', (reply: FromWriter) => {
        if (reply.type === 'parsed' && reply.block !== undefined) blocks.give(reply.block);
        const job = jobs.get(reply.id);
        if (job === undefined) return;
        if (reply.type === 'parsed') job.parsed(reply.inflated, reply.compressed);
        else if (reply.type === 'settled') job.stop();
        else assertNever(reply);
        forgetIfOver(job);
      });
      return;
    }
    if (writer === undefined) throw new Error('the inflater got a job before its writer');
    if (msg.type === 'start') return start(msg, writer);
    const job = jobs.get(msg.id);
    if (job === undefined) {
      // A job already over: its chunks are acked so the upload can run to its end.
      if (msg.type === 'chunk') toService({ type: 'ack', id: msg.id, bytes: msg.data.byteLength });
      else if (msg.type === 'abort') writer.postMessage({ type: 'abort', id: msg.id } satisfies ToWriter);
      return;
    }
    if (msg.type === 'chunk') job.chunk(msg.data);
    else if (msg.type === 'end') job.end();
    else if (msg.type === 'abort') {
      job.abort();
      jobs.delete(msg.id);
      writer.postMessage({ type: 'abort', id: msg.id } satisfies ToWriter);
    } else assertNever(msg);
    forgetIfOver(job);
  });
}
