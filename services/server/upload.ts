import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { DeployError, isDeployError } from './errors.js';

export interface ReceiveOptions {
  maxBytes: number;
  idleTimeoutMs: number;
  /** X-Bundle-Sha256, lower-case hex, when the client sent it. */
  expectedSha256?: string;
  /** Also gets every byte as it arrives (the unpacker), with backpressure; ended when the body ends. */
  sink?: Writable;
}

export interface ReceivedBundle {
  sha256: string;
  bytes: number;
}

/**
 * Streams an upload to `file`, hashing and counting as it goes; never holds the body in memory.
 * fastify's bodyLimit does not apply to a raw stream parser, and its requestTimeout did not end a
 * stalled upload (DESIGN.md "Facts measured"), so both limits are enforced here. On a refusal the
 * body is only paused, never destroyed: destroying a request stream destroys its socket, and the
 * client would never see the 413 / 408 (build-server.ts answers with `Connection: close`).
 */
export function receiveBundle(body: Readable, file: string, options: ReceiveOptions): Promise<ReceivedBundle> {
  const hash = createHash('sha256');
  const out = createWriteStream(file, { mode: 0o644 });
  let bytes = 0;
  let ended = false;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
  let used = 0;
  let flushSoon: NodeJS.Immediate | undefined;

  return new Promise<ReceivedBundle>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearImmediate(flushSoon);
      body.off('data', onData);
      body.pause();
      // Wait for the write stream to let go of the file, so the caller can delete the staging dir.
      out.once('close', () => reject(mapUploadError(err)));
      out.destroy();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new DeployError('DEPLOY_ERR_UPLOAD_TIMEOUT', `nothing received for ${options.idleTimeoutMs} ms`)),
        options.idleTimeoutMs);
    };
    // The block goes to the file and the sink whole, then a fresh one is filled: the file stream still holds it.
    const flush = () => {
      clearImmediate(flushSoon);
      flushSoon = undefined;
      if (used === 0 || settled) return;
      const full = block.subarray(0, used);
      block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
      used = 0;
      if (!out.write(full)) waitFor(out);
      if (options.sink && !options.sink.write(full)) waitFor(options.sink);
    };
    const onData = (chunk: Buffer) => {
      arm();
      bytes += chunk.length;
      if (bytes > options.maxBytes) return fail(new DeployError('DEPLOY_ERR_BUNDLE_TOO_LARGE', `more than ${options.maxBytes} bytes`));
      hash.update(chunk);
      for (let at = 0; at < chunk.length;) {
        const n = chunk.copy(block, used, at);
        used += n;
        at += n;
        if (used === BLOCK_BYTES) flush();
      }
      // What the socket had at once goes on together; nothing waits for a block to fill.
      flushSoon ??= setImmediate(flush);
    };
    // Our own backpressure is not the client stalling: the idle timer stops until both drain.
    let waiting = 0;
    const waitFor = (stream: Writable) => {
      waiting += 1;
      clearTimeout(timer);
      body.pause();
      stream.once('drain', () => {
        waiting -= 1;
        if (settled || waiting > 0) return;
        arm();
        body.resume();
      });
    };
    body.on('data', onData);
    body.once('end', () => {
      ended = true;
      clearTimeout(timer);
      flush();
      out.end();
      options.sink?.end();
    });
    // A client abort rejects the stream with ECONNRESET (DESIGN.md "Facts measured"), or just closes it.
    body.once('error', fail);
    body.once('close', () => {
      if (!ended) fail(new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', 'the connection closed before the body ended'));
    });
    out.once('error', fail);
    out.once('finish', () => {
      if (settled) return;
      settled = true;
      if (bytes === 0) return reject(new DeployError('DEPLOY_ERR_EMPTY_BUNDLE'));
      const sha256 = hash.digest('hex');
      if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
        return reject(new DeployError('DEPLOY_ERR_SHA256_MISMATCH', `received ${sha256}`));
      }
      resolve({ sha256, bytes });
    });
    arm();
    body.resume();
  });
}

/**
 * The body's chunks (64 KB socket reads) are gathered into blocks of up to this size before they
 * are written: each write to the file is a thread-pool round trip that cost 20-70 µs of the event
 * loop's time here, about 100 ms for a 48 MB bundle in 64 KB writes (docs/BENCHMARKS.md, figure 6).
 */
const BLOCK_BYTES = 1024 * 1024;

function mapUploadError(err: unknown): DeployError {
  if (isDeployError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.message === 'aborted') {
    return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e.message, { cause: err });
  }
  if (typeof e?.syscall === 'string') return new DeployError('DEPLOY_ERR_STORAGE', e.message, { cause: err });
  return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e?.message ?? String(err), { cause: err });
}
