import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BLOCK_BYTES, BlockPool } from './blocks.js';
import { DeployError, isDeployError, storageError } from '../errors.js';

export interface ReceiveOptions {
  maxBytes: number;
  idleTimeoutMs: number;
  /** X-Bundle-Sha256, lower-case hex, when the client sent it. */
  expectedSha256?: string;
}

export interface ReceivedBundle {
  sha256: string;
  bytes: number;
}

export interface KeptBundle {
  sha256: string;
  bytes: number;
}

/**
 * Where an upload's bytes go, block by block: a Writable that writes them to the bundle's file and
 * hashes them. A BundleFile does only that; an Extraction (extract.ts) also unpacks them, on its own
 * threads. A keeper takes each block written to it: the writer does not touch it again.
 */
export interface BundleKeeper extends Writable {
  /** Resolves once every byte written is in the file; rejects as soon as a write fails (disk full), not at the end. */
  readonly kept: Promise<KeptBundle>;
  /** Stops keeping; resolves once the file is let go, so it may be deleted. */
  abandon(reason: DeployError): Promise<void>;
}

/** A BundleKeeper on the event loop: a write stream and a hash. */
export class BundleFile extends Writable implements BundleKeeper {
  readonly kept: Promise<KeptBundle>;
  private readonly hash = createHash('sha256');
  private readonly out: WriteStream;
  private bytes = 0;

  constructor(file: string) {
    super({ highWaterMark: BLOCK_BYTES });
    this.out = createWriteStream(file, { mode: 0o644 });
    this.kept = new Promise<KeptBundle>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.once('finish', () => resolve({ sha256: this.hash.digest('hex'), bytes: this.bytes }));
    });
    this.kept.catch(() => undefined);
  }

  override _write(block: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.hash.update(block);
    this.bytes += block.length;
    // A failed write never drains: `kept` rejects instead, and receiveBundle stops the upload.
    if (this.out.write(block)) callback();
    else this.out.once('drain', callback);
  }

  override _final(callback: () => void): void {
    this.out.end();
    callback();
  }

  abandon(): Promise<void> {
    if (this.out.closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.out.once('close', () => resolve()));
    this.out.destroy();
    return closed;
  }
}

/**
 * Streams an upload into `keeper` (a pipeline: the body, `gather`, the keeper), counting as it goes;
 * never holds the body in memory. fastify's bodyLimit does not apply to a raw stream parser, and its
 * requestTimeout does not end a stalled upload, so both limits are
 * enforced here. The body is read through an iterator that leaves it alone when the pipeline stops:
 * destroying a request stream destroys its socket, and the client would never see the 413
 * (error-handler.ts reads and discards the rest, within bounds). A refusal rejects once the keeper
 * has let go of the file, so the caller can delete the staging folder.
 */
export async function receiveBundle(body: Readable, keeper: BundleKeeper, options: ReceiveOptions): Promise<ReceivedBundle> {
  // A write error (disk full) ends the upload at once, not when the body has ended.
  const stop = new AbortController();
  keeper.kept.catch((err: unknown) => stop.abort(err));
  try {
    await pipeline(body.iterator({ destroyOnReturn: false }), (source: AsyncIterable<Buffer>) => gather(source, options), keeper, { signal: stop.signal });
    const { sha256, bytes } = await keeper.kept;
    if (bytes === 0) throw new DeployError('DEPLOY_ERR_EMPTY_BUNDLE');
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
      throw new DeployError('DEPLOY_ERR_SHA256_MISMATCH', `received ${sha256}`);
    }
    return { sha256, bytes };
  } catch (err) {
    const error = mapUploadError(stop.signal.aborted ? stop.signal.reason : err);
    await keeper.abandon(error);
    throw error;
  }
}

/**
 * The body's chunks gathered into blocks, counted against `maxBytes`, with the idle timeout on each
 * wait for the client's next bytes. Only that wait counts: while a block waits for the keeper (our
 * own back-pressure, the unpacker busy) the client is not stalling. What the socket had at once goes
 * on together: a block goes on full, or as soon as the body has nothing more at hand.
 */
async function* gather(source: AsyncIterable<Buffer>, options: ReceiveOptions): AsyncGenerator<Buffer> {
  const chunks = source[Symbol.asyncIterator]();
  const blocks = new BlockFiller();
  let bytes = 0;
  try {
    for (;;) {
      const next = chunks.next();
      if (blocks.used > 0 && !(await settledAtOnce(next))) yield blocks.take();
      const { value, done } = await idleTimeout(next, options.idleTimeoutMs);
      if (done) break;
      bytes += value.length;
      if (bytes > options.maxBytes) throw new DeployError('DEPLOY_ERR_BUNDLE_TOO_LARGE', `more than ${options.maxBytes} bytes`);
      yield* blocks.fill(value);
    }
    if (blocks.used > 0) yield blocks.take();
  } finally {
    blocks.release();
    // Not awaited: with a read pending (a stalled client) the iterator lets go only once it settles.
    void chunks.return?.().catch(() => undefined);
  }
}

/** Whether `next` settles before the event loop turns: the body had more at hand. */
function settledAtOnce(next: Promise<unknown>): Promise<boolean> {
  return Promise.race([next.then(() => true, () => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
}

function idleTimeout<T>(next: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeployError('DEPLOY_ERR_UPLOAD_TIMEOUT', `nothing received for ${ms} ms`)), ms);
  });
  return Promise.race([next, stalled]).finally(() => clearTimeout(timer));
}

/**
 * A pooled block being filled. A block handed on is the keeper's; a trickle's small piece is copied
 * out instead, as handing over the whole block would move (and keep in flight) a megabyte for each.
 */
class BlockFiller {
  used = 0;
  private block: Buffer | undefined = Buffer.from(uploadBlocks.take());

  *fill(chunk: Buffer): Generator<Buffer> {
    for (let at = 0; at < chunk.length;) {
      const n = chunk.copy(this.current, this.used, at);
      this.used += n;
      at += n;
      if (this.used === BLOCK_BYTES) yield this.take();
    }
  }

  take(): Buffer {
    const block = this.current;
    const used = this.used;
    this.used = 0;
    if (used >= BLOCK_BYTES / 2) {
      this.block = Buffer.from(uploadBlocks.take());
      return block.subarray(0, used);
    }
    const piece = Buffer.allocUnsafeSlow(used);
    block.copy(piece, 0, 0, used);
    return piece;
  }

  /** The block being filled goes back to the pool, once (given twice, two uploads would fill the same block). */
  release(): void {
    if (this.block !== undefined) uploadBlocks.give(this.block.buffer as ArrayBuffer);
    this.block = undefined;
  }

  private get current(): Buffer {
    if (this.block === undefined) throw new Error('the upload\'s block was already given back');
    return this.block;
  }
}

/**
 * The body's chunks (64 KB socket reads) are gathered into blocks (blocks.ts) before they go on:
 * each write to a file is a thread-pool round trip that costs 20-70 µs of the event loop's time here,
 * about 100 ms for a 48 MB bundle in 64 KB writes (docs/BENCHMARKS.md, figure 6). An unpacker hands
 * each block back once used (extract.ts); the pool holds what two uploads at once keep in flight.
 */
export const uploadBlocks = new BlockPool(16);

function mapUploadError(err: unknown): DeployError {
  if (isDeployError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.message === 'aborted') {
    return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e.message, { cause: err });
  }
  if (typeof e?.syscall === 'string') return storageError(e);
  // Anything else (an unpacker thread that died) is the service's fault, not the client's.
  return new DeployError('DEPLOY_ERR_INTERNAL', e?.message ?? String(err), { cause: err });
}
