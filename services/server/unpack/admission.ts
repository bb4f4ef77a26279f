import type { Readable } from 'node:stream';
import { DeployError } from '../errors.js';

/** What a 429 DEPLOY_ERR_BUSY tells the client to wait before it tries again (seconds). */
export const BUSY_RETRY_AFTER_SECONDS = 5;

export interface AdmissionLimits {
  /** Uploads received and unpacked at once. */
  maxUploads: number;
  /** Uploads waiting for one of those places; past this they are refused (429). */
  maxQueuedUploads: number;
  /** How long an upload may wait for a place (the upload idle timeout: its body is not read meanwhile). */
  maxWaitMs: number;
}

/**
 * The uploads the service takes at once. Each upload in progress holds memory (blocks in flight, the
 * unpacker's state of it, open files), so their number is bounded; the next ones wait in a bounded
 * queue, in order, for at most `maxWaitMs`, and past the queue (or that wait) they are refused with
 * 429 DEPLOY_ERR_BUSY and a Retry-After. A client that goes away while waiting leaves the queue.
 */
export class UploadAdmission {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limits: AdmissionLimits) {}

  /** Resolves with the upload's `leave` once it may be read; `body` closing first ends the wait. */
  enter(body: Readable): Promise<() => void> {
    if (this.running < this.limits.maxUploads) return Promise.resolve(this.admit());
    if (this.waiting.length >= this.limits.maxQueuedUploads) {
      return Promise.reject(new DeployError('DEPLOY_ERR_BUSY', `${this.running} uploads in progress and ${this.waiting.length} waiting`));
    }
    return new Promise((resolve, reject) => {
      const give = (): void => {
        settle();
        resolve(this.admit());
      };
      const settle = (): void => {
        clearTimeout(timer);
        body.off('close', onClose);
        const at = this.waiting.indexOf(give);
        if (at >= 0) this.waiting.splice(at, 1);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new DeployError('DEPLOY_ERR_BUSY', `no upload finished within ${this.limits.maxWaitMs} ms`));
      }, this.limits.maxWaitMs);
      const onClose = (): void => {
        settle();
        reject(new DeployError('DEPLOY_ERR_UPLOAD_ABORTED', 'the client went away while its upload waited'));
      };
      body.once('close', onClose);
      this.waiting.push(give);
    });
  }

  private admit(): () => void {
    this.running += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.running -= 1;
      this.waiting[0]?.();
    };
  }
}
