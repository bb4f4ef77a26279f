import { EventEmitter } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ExtractLimits } from './extract-checks.js';
import type { FromWorker, LinkSource, ToInflater, WorkerError, WorkerResult } from './extract-protocol.js';
import { DeployError, DeployErrorCodes, isDeployError, type DeployErrorCode } from './errors.js';
import type { FileHashManifest } from './file-hashes.js';

export type { ExtractLimits } from './extract-checks.js';
export type { LinkSource } from './extract-protocol.js';

export interface ExtractResult {
  /** The app's root: `dest` itself, or the single top-level folder (`package/` of `npm pack`). */
  root: string;
  entries: number;
  /** Regular files (hard links included) and their bytes, under `root`. */
  files: number;
  bytes: number;
  /** Files hard-linked from the link source (the current release) instead of written. */
  linked: number;
  /** sha256 of every regular file, by posix path relative to `root`, and every symlink: the runtime's input. */
  manifest: FileHashManifest;
}

/** Compressed bytes handed to the unpacker and not yet parsed; past this the upload waits. */
const MAX_IN_FLIGHT = 4 * 1024 * 1024;
/**
 * While the unpacker has bytes in hand, more are gathered up to this much before they are sent:
 * one message (one wake-up of the inflater) per megabyte rather than per 64 KB socket read.
 */
const BATCH_BYTES = 1024 * 1024;
/** Unpackers kept (an inflater and a writer thread each): two uploads unpack at once, a third waits. */
const POOL_SIZE = 2;
/** An unpacker that does not confirm an abort in this long is terminated. */
const ABORT_GRACE_MS = 10_000;

/**
 * Unpacks a .tgz as it arrives, into `dest` (a fresh staging directory), on two worker threads: the
 * inflater (inflate-worker.ts) and the writer (extract-worker.ts). Write the .tgz's bytes into it;
 * `result` resolves once the archive is unpacked and checked, or rejects with a DEPLOY_ERR_* code
 * once the writer has stopped writing, so the caller may then delete `dest`. After a failure,
 * further writes are accepted and dropped: an upload goes on to its end, so its own errors (size,
 * sha256) still come first.
 *
 * `extractTimeoutMs` bounds the time the unpacker is busy; time spent waiting for the upload's next
 * bytes does not count (the upload's idle timeout covers that).
 *
 * With `linkFrom` (the app's current release), a small file whose bytes that release already has is
 * hard-linked from it instead of written: a deploy that changes a few files writes a few files.
 */
export class Extraction extends Writable {
  readonly result: Promise<ExtractResult>;
  private readonly id = nextJobId++;
  private readonly unpacker: Promise<Unpacker>;
  private settle!: (outcome: { result: WorkerResult } | { error: DeployError | Error }) => void;
  /** Bytes sent and not yet parsed. */
  private inFlight = 0;
  /** Bytes gathered while the unpacker is busy, sent as one message (BATCH_BYTES). */
  private batch = new Uint8Array(BATCH_BYTES);
  private batched = 0;
  private held: (() => void) | undefined;
  private ended = false;
  private settled = false;
  private abortReason: DeployError | undefined;
  private busyMs = 0;
  private busySince: number | undefined;
  private deadline: NodeJS.Timeout | undefined;

  constructor(private readonly dest: string, private readonly limits: ExtractLimits, linkFrom?: LinkSource) {
    super({ highWaterMark: 1024 * 1024 });
    this.result = new Promise<ExtractResult>((resolve, reject) => {
      this.settle = (outcome) => {
        if (this.settled) return;
        this.settled = true;
        clearTimeout(this.deadline);
        this.release();
        if ('result' in outcome) resolve(toResult(this.dest, outcome.result));
        else reject(outcome.error);
      };
    });
    // The caller awaits `result` once its upload ended; a failure before that is not unhandled.
    this.result.catch(() => undefined);
    this.unpacker = pool.acquire().then((unpacker) => {
      unpacker.on('message', this.onMessage);
      unpacker.on('error', this.onCrash);
      const { maxUnpackedBytes, maxFiles, maxDepth, extractTimeoutMs } = limits;
      const start: ToInflater = { type: 'start', id: this.id, dest, limits: { maxUnpackedBytes, maxFiles, maxDepth, extractTimeoutMs } };
      unpacker.post(linkFrom ? { ...start, linkFrom } : start);
      return unpacker;
    });
  }

  /** Stops the unpacker; `result` rejects with `reason` once it has stopped writing. */
  abort(reason: DeployError): void {
    if (this.settled || this.abortReason) return;
    this.abortReason = reason;
    void this.unpacker.then((unpacker) => {
      if (this.settled) return;
      unpacker.post({ type: 'abort', id: this.id });
      const grace = setTimeout(() => {
        pool.discard(unpacker);
        this.settle({ error: reason });
      }, ABORT_GRACE_MS);
      void this.result.finally(() => clearTimeout(grace)).catch(() => undefined);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.unpacker.then((unpacker) => {
      if (this.settled || this.abortReason) return callback();
      // Copied: the chunk's own buffer may be a slice of a larger, shared one, and the batch is sent away.
      for (let at = 0; at < chunk.byteLength;) {
        const n = Math.min(chunk.byteLength - at, BATCH_BYTES - this.batched);
        this.batch.set(chunk.subarray(at, at + n), this.batched);
        this.batched += n;
        at += n;
        if (this.batched === BATCH_BYTES) this.send(unpacker);
      }
      // An idle unpacker gets what there is at once; a busy one gets it in batches.
      if (this.inFlight === 0) this.send(unpacker);
      if (this.inFlight > MAX_IN_FLIGHT) this.held = callback;
      else callback();
    }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.unpacker.then((unpacker) => {
      this.ended = true;
      if (!this.settled && !this.abortReason) {
        this.send(unpacker);
        this.busy();
        unpacker.post({ type: 'end', id: this.id });
      }
      callback();
    }, callback);
  }

  private send(unpacker: Unpacker): void {
    if (this.batched === 0) return;
    const data = this.batched === BATCH_BYTES ? this.batch : this.batch.slice(0, this.batched);
    if (this.batched === BATCH_BYTES) this.batch = new Uint8Array(BATCH_BYTES);
    this.batched = 0;
    this.inFlight += data.byteLength;
    this.busy();
    unpacker.post({ type: 'chunk', id: this.id, data }, [data.buffer]);
  }

  private readonly onMessage = (msg: FromWorker): void => {
    if (msg.id !== this.id || this.settled) return;
    if (msg.type === 'ack') {
      this.inFlight -= msg.bytes;
      if (this.inFlight === 0 && this.batched > 0 && !this.abortReason) void this.unpacker.then((unpacker) => this.send(unpacker));
      if (this.inFlight <= MAX_IN_FLIGHT) this.unhold();
      if (this.inFlight === 0 && this.batched === 0 && !this.ended) this.idle();
      return;
    }
    if (this.abortReason) return this.settle({ error: this.abortReason });
    if (msg.type === 'done') return this.settle({ result: msg.result });
    if (msg.type === 'failed') return this.settle({ error: fromWorker(msg.error) });
  };

  private readonly onCrash = (err: Error): void => {
    void this.unpacker.then((unpacker) => pool.discard(unpacker));
    this.settle({ error: this.abortReason ?? new Error(`the unpacker crashed: ${err.message}`, { cause: err }) });
  };

  /** The deadline runs while the unpacker has work; `extractTimeoutMs` of such time aborts it. */
  private busy(): void {
    if (this.busySince !== undefined || this.settled) return;
    this.busySince = performance.now();
    this.deadline = setTimeout(() => {
      this.abort(new DeployError('DEPLOY_ERR_EXTRACT_TIMEOUT', `${this.limits.extractTimeoutMs} ms`));
    }, Math.max(0, this.limits.extractTimeoutMs - this.busyMs));
  }

  private idle(): void {
    if (this.busySince === undefined) return;
    this.busyMs += performance.now() - this.busySince;
    this.busySince = undefined;
    clearTimeout(this.deadline);
  }

  private unhold(): void {
    const held = this.held;
    this.held = undefined;
    held?.();
  }

  /** Once settled the unpacker is done with this job: later writes are dropped, a held one goes on. */
  private release(): void {
    this.unhold();
    void this.unpacker.then((unpacker) => {
      unpacker.off('message', this.onMessage);
      unpacker.off('error', this.onCrash);
      pool.release(unpacker);
    });
  }
}

/** Unpacks a .tgz file (a NATS host's copy of a bundle, say) exactly as an upload is unpacked. */
export async function extractBundle(bundleFile: string, dest: string, limits: ExtractLimits): Promise<ExtractResult> {
  const extraction = new Extraction(dest, limits);
  try {
    await pipeline(createReadStream(bundleFile, { highWaterMark: 256 * 1024 }), extraction);
  } catch (err) {
    extraction.abort(mapExtractError(err));
  }
  return extraction.result;
}

let nextJobId = 1;

/**
 * An inflater and a writer thread joined by a port: what the pool keeps and a job uses. Jobs talk
 * to the inflater and hear from both; when either thread exits, both go.
 */
class Unpacker extends EventEmitter {
  private readonly threads: [Worker, Worker];
  private gone = false;

  constructor() {
    super();
    const inflater = new Worker(workerFile('inflate-worker.js'));
    const writer = new Worker(workerFile('extract-worker.js'));
    this.threads = [inflater, writer];
    const { port1, port2 } = new MessageChannel();
    inflater.postMessage({ type: 'connect', port: port1 } satisfies ToInflater, [port1]);
    writer.postMessage({ type: 'connect', port: port2 }, [port2]);
    for (const thread of this.threads) {
      thread.on('message', (msg: FromWorker) => this.emit('message', msg));
      thread.on('error', (err: Error) => this.emit('error', err));
      thread.once('exit', () => {
        if (this.gone) return;
        this.terminate();
        this.emit('exit');
      });
    }
  }

  post(msg: ToInflater, transfer?: ArrayBuffer[]): void {
    this.threads[0].postMessage(msg, transfer);
  }

  ref(): void {
    for (const thread of this.threads) thread.ref();
  }

  unref(): void {
    for (const thread of this.threads) thread.unref();
  }

  terminate(): void {
    this.gone = true;
    for (const thread of this.threads) void thread.terminate();
  }
}

/** Unpackers kept between uploads (unref'd while idle, so they never hold the process open). */
class UnpackerPool {
  private readonly idle: Unpacker[] = [];
  private readonly waiting: ((unpacker: Unpacker) => void)[] = [];
  private readonly live = new Set<Unpacker>();

  acquire(): Promise<Unpacker> {
    const unpacker = this.idle.pop();
    if (unpacker) {
      unpacker.ref();
      return Promise.resolve(unpacker);
    }
    if (this.live.size < POOL_SIZE) return Promise.resolve(this.spawn());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(unpacker: Unpacker): void {
    if (!this.live.has(unpacker)) return;
    const next = this.waiting.shift();
    if (next) return next(unpacker);
    unpacker.unref();
    this.idle.push(unpacker);
  }

  /** An unpacker that misbehaved is ended; whoever waits gets a fresh one. */
  discard(unpacker: Unpacker): void {
    if (!this.live.has(unpacker)) return;
    this.forget(unpacker);
    unpacker.terminate();
  }

  private forget(unpacker: Unpacker): void {
    if (!this.live.delete(unpacker)) return;
    const at = this.idle.indexOf(unpacker);
    if (at >= 0) this.idle.splice(at, 1);
    const next = this.waiting.shift();
    if (next) next(this.spawn());
  }

  private spawn(): Unpacker {
    const unpacker = new Unpacker();
    this.live.add(unpacker);
    // An unexpected exit (a crash) takes the unpacker out of the pool; its job sees the 'error'.
    unpacker.once('exit', () => this.forget(unpacker));
    unpacker.on('error', () => this.forget(unpacker));
    return unpacker;
  }
}

const pool = new UnpackerPool();

/** A thread's file in `dist/services/server/`, also when this module runs from source (tests on .ts files). */
function workerFile(name: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, name);
  if (existsSync(sibling)) return sibling;
  return path.resolve(here, '..', '..', 'dist', 'services', 'server', name);
}

function toResult(dest: string, result: WorkerResult): ExtractResult {
  const files: Record<string, string> = {};
  let bytes = 0;
  for (const [rel, hash, size] of result.files.sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    files[rel] = hash;
    bytes += size;
  }
  return {
    root: result.prefix === '' ? dest : path.join(dest, result.prefix),
    entries: result.entries,
    files: result.files.length,
    bytes,
    linked: result.linked,
    manifest: { version: 1, algorithm: 'sha256', files, links: result.links.sort() },
  };
}

function fromWorker(error: WorkerError): DeployError {
  if (error.deployCode !== undefined && error.deployCode in DeployErrorCodes) {
    return new DeployError(error.deployCode as DeployErrorCode, error.detail);
  }
  return mapExtractError(Object.assign(new Error(error.message), {
    code: error.code, syscall: error.syscall, tarCode: error.tarCode, entry: { path: error.entryPath },
  }));
}

const STORAGE_ERRNOS = new Set(['ENOSPC', 'EFBIG', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE']);
/** fs errors an archive causes by itself: a file where a folder must go, or the other way round. */
const CONFLICT_ERRNOS = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY']);

/** node-tar / zlib / fs errors → DEPLOY_ERR_* (named by entry, never by the server's own paths). */
function mapExtractError(err: unknown): DeployError {
  if (isDeployError(err)) return err;
  const e = err as NodeJS.ErrnoException & { tarCode?: string; entry?: { path?: string } };
  const detail = e?.message ?? String(err);
  const where = `${e?.code} on ${e?.entry?.path ?? 'an entry'}`;
  if (typeof e?.code === 'string' && STORAGE_ERRNOS.has(e.code)) return new DeployError('DEPLOY_ERR_STORAGE', where, { cause: err });
  if (typeof e?.code === 'string' && CONFLICT_ERRNOS.has(e.code)) return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `entries conflict: ${where}`, { cause: err });
  if (e?.tarCode === 'TAR_ENTRY_UNSUPPORTED') return new DeployError('DEPLOY_ERR_ENTRY_TYPE', detail, { cause: err });
  if (typeof e?.syscall === 'string') return new DeployError('DEPLOY_ERR_STORAGE', where, { cause: err });
  return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', detail, { cause: err });
}
