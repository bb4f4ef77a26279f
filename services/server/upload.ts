import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { DeployError, isDeployError } from './errors.js';

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

/**
 * Streams an upload to `file`, hashing and counting as it goes; never holds the body in memory.
 * fastify's bodyLimit does not apply to a raw stream parser, and its requestTimeout did not end a
 * stalled upload (DESIGN.md "Facts measured"), so both limits are enforced here.
 */
export async function receiveBundle(body: Readable, file: string, options: ReceiveOptions): Promise<ReceivedBundle> {
  const hash = createHash('sha256');
  const out = createWriteStream(file, { mode: 0o644 });
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => body.destroy(new DeployError('DEPLOY_ERR_UPLOAD_TIMEOUT', `nothing received for ${options.idleTimeoutMs} ms`)),
      options.idleTimeoutMs);
  };
  try {
    arm();
    for await (const chunk of body as AsyncIterable<Buffer>) {
      arm();
      bytes += chunk.length;
      if (bytes > options.maxBytes) throw new DeployError('DEPLOY_ERR_BUNDLE_TOO_LARGE', `more than ${options.maxBytes} bytes`);
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');
  } catch (err) {
    out.destroy();
    throw mapUploadError(err);
  } finally {
    clearTimeout(timer);
  }
  if (bytes === 0) throw new DeployError('DEPLOY_ERR_EMPTY_BUNDLE');
  const sha256 = hash.digest('hex');
  if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
    throw new DeployError('DEPLOY_ERR_SHA256_MISMATCH', `received ${sha256}`);
  }
  return { sha256, bytes };
}

function mapUploadError(err: unknown): DeployError {
  if (isDeployError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  // A client abort rejects the request stream with ECONNRESET / "aborted" (DESIGN.md "Facts measured").
  if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.message === 'aborted') {
    return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e.message, { cause: err });
  }
  if (typeof e?.syscall === 'string') return new DeployError('DEPLOY_ERR_STORAGE', e.message, { cause: err });
  return new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', e?.message ?? String(err), { cause: err });
}
