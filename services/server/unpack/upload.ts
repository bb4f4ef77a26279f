import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { BLOCK_BYTES, BlockPool } from './blocks.js';
import { DeployError, isDeployError } from '../errors.js';

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
 * Where an upload's bytes go, block by block: it writes them to the bundle's file and hashes them.
 * A BundleFile does only that; an Extraction (extract.ts) also unpacks them, on its own threads.
 */
export interface BundleKeeper {
  /** Takes the block: the caller does not touch it again. false: wait for 'drain'. */
  write(block: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  end(): unknown;
  /** Resolves once every byte written is in the file; rejects as soon as a write fails (disk full), not at the end. */
  readonly kept: Promise<KeptBundle>;
  /** Stops keeping; resolves once the file is let go, so it may be deleted. */
  abandon(reason: DeployError): Promise<void>;
}

/** A BundleKeeper on the event loop: a write stream and a hash. */
export class BundleFile implements BundleKeeper {
  readonly kept: Promise<KeptBundle>;
  private readonly hash = createHash('sha256');
  private readonly out: WriteStream;
  private bytes = 0;

  constructor(file: string) {
    this.out = createWriteStream(file, { mode: 0o644 });
    this.kept = new Promise<KeptBundle>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.once('finish', () => resolve({ sha256: this.hash.digest('hex'), bytes: this.bytes }));
    });
    this.kept.catch(() => undefined);
  }

  write(block: Buffer): boolean {
    this.hash.update(block);
    this.bytes += block.length;
    return this.out.write(block);
  }

  once(event: 'drain', listener: () => void): this {
    this.out.once(event, listener);
    return this;
  }

  end(): void {
    this.out.end();
  }

  abandon(): Promise<void> {
    if (this.out.closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.out.once('close', () => resolve()));
    this.out.destroy();
    return closed;
  }
}

/**
 * Streams an upload into `keeper`, counting as it goes; never holds the body in memory. fastify's
 * bodyLimit does not apply to a raw stream parser, and its requestTimeout did not end a stalled
 * upload (DESIGN.md "Facts measured"), so both limits are enforced here. On a refusal the body is
 * only paused, never destroyed: destroying a request stream destroys its socket, and the client
 * would never see the 413 / 408 (error-handler.ts reads and discards the rest, within bounds). A refusal
 * rejects once the keeper has let go of the file, so the caller can delete the staging folder.
 */
export function receiveBundle(body: Readable, keeper: BundleKeeper, options: ReceiveOptions): Promise<ReceivedBundle> {
  let bytes = 0;
  let ended = false;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let block = Buffer.from(uploadBlocks.take());
  let used = 0;
  let flushSoon: NodeJS.Immediate | undefined;
  // The block being filled goes back to the pool once nothing more is copied into it (once only:
  // given twice, two uploads would fill the same block).
  let blockReturned = false;
  const returnBlock = () => {
    if (blockReturned) return;
    blockReturned = true;
    uploadBlocks.give(block.buffer as ArrayBuffer);
  };

  return new Promise<ReceivedBundle>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearImmediate(flushSoon);
      body.off('data', onData);
      returnBlock();
      body.pause();
      const error = mapUploadError(err);
      void keeper.abandon(error).then(() => reject(error));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new DeployError('DEPLOY_ERR_UPLOAD_TIMEOUT', `nothing received for ${options.idleTimeoutMs} ms`)),
        options.idleTimeoutMs);
    };
    // The block is handed to the keeper and a fresh one filled: one write (one message to the
    // unpacker, one thread-pool round trip) per block, not per 64 KB socket read.
    const flush = () => {
      clearImmediate(flushSoon);
      flushSoon = undefined;
      if (used === 0 || settled) return;
      let full: Buffer;
      if (used >= BLOCK_BYTES / 2) {
        full = block.subarray(0, used);
        block = Buffer.from(uploadBlocks.take());
      } else {
        // A trickle's small piece is copied out: handing over the whole block would move (and
        // keep in flight) a megabyte for each of them.
        full = Buffer.allocUnsafeSlow(used);
        block.copy(full, 0, 0, used);
      }
      used = 0;
      if (!keeper.write(full)) waitForDrain();
    };
    const onData = (chunk: Buffer) => {
      arm();
      bytes += chunk.length;
      if (bytes > options.maxBytes) return fail(new DeployError('DEPLOY_ERR_BUNDLE_TOO_LARGE', `more than ${options.maxBytes} bytes`));
      for (let at = 0; at < chunk.length;) {
        const n = chunk.copy(block, used, at);
        used += n;
        at += n;
        if (used === BLOCK_BYTES) flush();
      }
      // What the socket had at once goes on together; nothing waits for a block to fill.
      flushSoon ??= setImmediate(flush);
    };
    // Our own backpressure is not the client stalling: the idle timer stops until the keeper drains.
    let waiting = false;
    const waitForDrain = () => {
      if (waiting) return;
      waiting = true;
      clearTimeout(timer);
      body.pause();
      keeper.once('drain', () => {
        waiting = false;
        if (settled) return;
        arm();
        body.resume();
      });
    };
    body.on('data', onData);
    body.once('end', () => {
      ended = true;
      clearTimeout(timer);
      flush();
      returnBlock();
      keeper.end();
      keeper.kept.then(({ sha256 }) => {
        if (settled) return;
        if (bytes === 0) return fail(new DeployError('DEPLOY_ERR_EMPTY_BUNDLE'));
        if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
          return fail(new DeployError('DEPLOY_ERR_SHA256_MISMATCH', `received ${sha256}`));
        }
        settled = true;
        resolve({ sha256, bytes });
      }, fail);
    });
    // A client abort rejects the stream with ECONNRESET (DESIGN.md "Facts measured"), or just closes it.
    body.once('error', fail);
    body.once('close', () => {
      if (!ended) fail(new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', 'the connection closed before the body ended'));
    });
    // A write error (disk full) ends the upload at once.
    keeper.kept.catch(fail);
    arm();
    body.resume();
  });
}

/**
 * The body's chunks (64 KB socket reads) are gathered into blocks (blocks.ts) before they go on:
 * each write to a file is a thread-pool round trip that cost 20-70 µs of the event loop's time here,
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
  if (typeof e?.syscall === 'string') return new DeployError('DEPLOY_ERR_STORAGE', e.message, { cause: err });
  return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e?.message ?? String(err), { cause: err });
}
