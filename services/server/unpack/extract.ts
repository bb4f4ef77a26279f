import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ExtractLimits } from './extract-checks.js';
import type { FromWorker, LinkSource, ToInflater, WorkerError, WorkerResult } from './extract-protocol.js';
import { DeployError, DeployErrorCodes, isDeployError, type DeployErrorCode } from '../errors.js';
import type { FileHashManifest } from '../file-hashes.js';
import { uploadBlocks, type BundleKeeper, type KeptBundle } from './upload.js';
import { assertNever } from '../../../agent/common/guards.js';
import { builtScript } from '../../../agent/common/package-files.js';

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
 * Unpackers kept (an inflater and a writer thread each). Each unpacks any number of uploads at once,
 * working on whichever sent data: an upload that stalls costs its unpacker no time.
 */
const POOL_SIZE = 2;
/** An unpacker that does not confirm an abort in this long is terminated. */
const ABORT_GRACE_MS = 10_000;
/** A chunk whose memory is at least this large is its own allocation (Node pools only small buffers): it is handed over, not copied. */
const OWN_ALLOCATION_BYTES = 64 * 1024;

/**
 * Unpacks a .tgz as it arrives, into `dest` (a fresh staging directory), on two worker threads: the
 * inflater (inflate-worker.ts) and the writer (extract-worker.ts). Write the .tgz's bytes into it;
 * `result` resolves once the archive is unpacked and checked, or rejects with a DEPLOY_ERR_* code
 * once the writer has stopped writing, so the caller may then delete `dest`.
 *
 * With `keep` (a file path) it is also the upload's BundleKeeper: the inflater writes the .tgz there
 * and hashes it, and `kept` resolves once the last byte is on disk. The .tgz is kept to its end even
 * after the unpacking failed, so the upload's own errors (size, sha256) still come first. Without
 * `keep`, writes after a failure are accepted and dropped.
 *
 * Written chunks are handed over: their memory is transferred to the inflater, not copied (small,
 * pooled buffers excepted), so a caller must not touch a chunk again once written.
 *
 * `extractTimeoutMs` bounds the time the unpacker is busy; time spent waiting for the upload's next
 * bytes does not count (the upload's idle timeout covers that).
 *
 * With `linkFrom` (the app's current release), a small file whose bytes that release already has is
 * hard-linked from it instead of written: a deploy that changes a few files writes a few files.
 */
export class Extraction extends Writable implements BundleKeeper {
  readonly result: Promise<ExtractResult>;
  readonly kept: Promise<KeptBundle>;
  /** Resolves once the unpacker has let go of `dest` and of the kept file. */
  readonly finished: Promise<void>;
  private readonly id = nextJobId++;
  private readonly unpacker: Unpacker;
  private settleResult!: (outcome: { result: WorkerResult } | { error: Error }) => void;
  private settleKept!: (outcome: KeptBundle | { error: Error }) => void;
  private resultSettled = false;
  private keptSettled: boolean;
  private onFinished!: () => void;
  /** Bytes sent and not yet parsed. */
  private inFlight = 0;
  private held: (() => void) | undefined;
  private ended = false;
  private abortReason: DeployError | undefined;
  private busyMs = 0;
  private busySince: number | undefined;
  private deadline: NodeJS.Timeout | undefined;

  constructor(private readonly dest: string, private readonly limits: ExtractLimits, options: { linkFrom?: LinkSource; keep?: string; delta?: boolean } = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.keptSettled = options.keep === undefined;
    this.finished = new Promise((resolve) => (this.onFinished = resolve));
    this.result = new Promise<ExtractResult>((resolve, reject) => {
      this.settleResult = (outcome) => {
        if (this.resultSettled) return;
        this.resultSettled = true;
        if ('result' in outcome) resolve(toResult(this.dest, outcome.result));
        else reject(outcome.error);
        this.maybeRelease();
      };
    });
    this.kept = new Promise<KeptBundle>((resolve, reject) => {
      this.settleKept = (outcome) => {
        if (this.keptSettled) return;
        this.keptSettled = true;
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome);
        this.maybeRelease();
      };
    });
    // The caller awaits these once its upload ended; a failure before that is not unhandled.
    this.result.catch(() => undefined);
    this.kept.catch(() => undefined);
    this.unpacker = pool.acquire();
    this.unpacker.attach(this.id, this.onMessage, this.onCrash);
    const { maxUnpackedBytes, maxFiles, maxDepth, extractTimeoutMs } = limits;
    this.unpacker.post({
      type: 'start', id: this.id, dest, limits: { maxUnpackedBytes, maxFiles, maxDepth, extractTimeoutMs },
      ...(options.linkFrom ? { linkFrom: options.linkFrom } : {}), ...(options.keep === undefined ? {} : { keep: options.keep }),
      ...(options.delta ? { delta: true } : {}),
    });
  }

  /** Stops the unpacker; `result` (and `kept`, if pending) reject with `reason` once it has let go of its files. */
  abort(reason: DeployError): void {
    if (this.done || this.abortReason) return;
    this.abortReason = reason;
    this.unpacker.post({ type: 'abort', id: this.id });
    const grace = setTimeout(() => {
      this.settleBoth(reason);
      pool.discard(this.unpacker);
    }, ABORT_GRACE_MS);
    void this.finished.finally(() => clearTimeout(grace));
  }

  abandon(reason: DeployError): Promise<void> {
    this.abort(reason);
    return this.finished;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.done || this.abortReason) return callback();
    const data = chunk.buffer.byteLength >= OWN_ALLOCATION_BYTES ? chunk : new Uint8Array(chunk);
    this.inFlight += data.byteLength;
    this.busy();
    this.unpacker.post({ type: 'chunk', id: this.id, data }, [data.buffer as ArrayBuffer]);
    if (this.inFlight > MAX_IN_FLIGHT) this.held = callback;
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.ended = true;
    if (!this.done && !this.abortReason) {
      this.busy();
      this.unpacker.post({ type: 'end', id: this.id });
    }
    callback();
  }

  /** Nothing more is owed: the outcome and, when keeping, the kept file. */
  private get done(): boolean {
    return this.resultSettled && this.keptSettled;
  }

  private readonly onMessage = (msg: FromWorker): void => {
    if (this.done) return;
    if (msg.type === 'ack') {
      this.inFlight -= msg.bytes;
      if (this.inFlight <= MAX_IN_FLIGHT) this.unhold();
      if (this.inFlight === 0 && !this.ended) this.idle();
      return;
    }
    if (msg.type === 'kept') return this.settleKept('error' in msg ? { error: fromWorker(msg.error) } : { sha256: msg.sha256, bytes: msg.bytes });
    if (this.abortReason) return this.settleBoth(this.abortReason);
    if (msg.type === 'done') return this.settleResult({ result: msg.result });
    if (msg.type === 'failed') return this.settleResult({ error: fromWorker(msg.error) });
    if (msg.type === 'aborted') return this.settleBoth(new Error('the unpacker aborted a job nobody aborted'));
    assertNever(msg);
  };

  private readonly onCrash = (err: Error): void => {
    this.settleBoth(this.abortReason ?? new Error(`the unpacker crashed: ${err.message}`, { cause: err }));
  };

  private settleBoth(error: Error): void {
    this.settleKept({ error });
    this.settleResult({ error });
  }

  /** The deadline runs while the unpacker has work; `extractTimeoutMs` of such time aborts it. */
  private busy(): void {
    if (this.busySince !== undefined || this.resultSettled) return;
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

  /** Once nothing more is owed the unpacker goes back to the pool: later writes are dropped, a held one goes on. */
  private maybeRelease(): void {
    if (this.resultSettled) clearTimeout(this.deadline);
    if (!this.done) return;
    this.unhold();
    this.unpacker.detach(this.id);
    this.onFinished();
  }
}

/** Unpacks a .tgz file (a NATS host's copy of a bundle or of a delta, say) exactly as an upload is unpacked. */
export async function extractBundle(bundleFile: string, dest: string, limits: ExtractLimits, options: { delta?: boolean } = {}): Promise<ExtractResult> {
  const extraction = new Extraction(dest, limits, options);
  try {
    await pipeline(createReadStream(bundleFile, { highWaterMark: 1024 * 1024 }), extraction);
  } catch (err) {
    extraction.abort(mapExtractError(err));
  }
  return extraction.result;
}

let nextJobId = 1;

/**
 * An inflater and a writer thread joined by a port: what the pool keeps and jobs share. Jobs talk
 * to the inflater and hear from both, each by its id; when either thread exits, both go, and every
 * job still on them fails.
 */
class Unpacker {
  private readonly threads: [Worker, Worker];
  private readonly jobs = new Map<number, { onMessage: (msg: FromWorker) => void; onCrash: (err: Error) => void }>();
  private gone = false;

  constructor(private readonly onGone: (unpacker: Unpacker) => void) {
    // Not the embedding process's flags (worker threads inherit process.execArgv by default): under
    // `node --input-type=module -e …` that flag alone kills a thread started from a file, and the
    // unpackers need none of them.
    const inflater = new Worker(workerFile('inflate-worker.js'), { execArgv: [] });
    const writer = new Worker(workerFile('extract-worker.js'), { execArgv: [] });
    this.threads = [inflater, writer];
    const { port1, port2 } = new MessageChannel();
    inflater.postMessage({ type: 'connect', port: port1 } satisfies ToInflater, [port1]);
    writer.postMessage({ type: 'connect', port: port2 }, [port2]);
    for (const thread of this.threads) {
      thread.on('message', (msg: FromWorker) => {
        // Blocks come back whoever's job they carried (an ack may follow a job that is over): the pool is shared.
        if (msg.type === 'ack' && msg.blocks !== undefined) for (const block of msg.blocks) uploadBlocks.give(block);
        this.jobs.get(msg.id)?.onMessage(msg);
      });
      thread.on('error', (err: Error) => this.end(err));
      // An exit nobody asked for fails the jobs in hand, whether or not an 'error' came first.
      thread.once('exit', (code: number) => this.end(new Error(`an unpacker thread exited with code ${code}`)));
    }
    this.unref();
  }

  /** Jobs on this unpacker now. */
  get load(): number {
    return this.jobs.size;
  }

  attach(id: number, onMessage: (msg: FromWorker) => void, onCrash: (err: Error) => void): void {
    if (this.gone) {
      onCrash(new Error('the unpacker has ended'));
      return;
    }
    if (this.jobs.size === 0) this.ref();
    this.jobs.set(id, { onMessage, onCrash });
  }

  /** A job over; an unpacker with none is unref'd, so it never holds the process open. */
  detach(id: number): void {
    if (this.jobs.delete(id) && this.jobs.size === 0) this.unref();
  }

  post(msg: ToInflater, transfer?: ArrayBuffer[]): void {
    if (!this.gone) this.threads[0].postMessage(msg, transfer);
  }

  /** Ends both threads; every job still on them fails with `reason`. */
  end(reason: Error): void {
    if (this.gone) return;
    this.gone = true;
    for (const thread of this.threads) void thread.terminate();
    this.onGone(this);
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) job.onCrash(reason);
  }

  private ref(): void {
    for (const thread of this.threads) thread.ref();
  }

  private unref(): void {
    for (const thread of this.threads) thread.unref();
  }
}

/** Up to POOL_SIZE unpackers, made as needed (a second once the first has work); a new job goes to the one with the fewest jobs. */
class UnpackerPool {
  private readonly live: Unpacker[] = [];

  acquire(): Unpacker {
    const least = this.live.reduce<Unpacker | undefined>((best, u) => (best === undefined || u.load < best.load ? u : best), undefined);
    if (least !== undefined && (least.load === 0 || this.live.length >= POOL_SIZE)) return least;
    const unpacker = new Unpacker((gone) => {
      const at = this.live.indexOf(gone);
      if (at >= 0) this.live.splice(at, 1);
    });
    this.live.push(unpacker);
    return unpacker;
  }

  /** An unpacker that misbehaved (an abort it never confirmed) is ended, and its other jobs with it. */
  discard(unpacker: Unpacker): void {
    unpacker.end(new Error('the unpacker did not confirm an abort and was ended'));
  }
}

const pool = new UnpackerPool();

function workerFile(name: string): string {
  return builtScript(`services/server/unpack/${name}`);
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
