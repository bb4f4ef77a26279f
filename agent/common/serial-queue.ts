/**
 * Jobs run one at a time, in the order they were queued (Vite's serial update queue). A job that
 * fails does not stop the ones behind it; its caller gets the rejection.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  run<T>(job: () => T | Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(job, job);
    this.tail = result.then(
      () => { this.queued--; },
      () => { this.queued--; },
    );
    return result;
  }

  /** Whether a job is queued or running (a new one would wait). */
  get busy(): boolean {
    return this.queued > 0;
  }

  /** Resolves once every job queued so far has settled. */
  async idle(): Promise<void> {
    while (this.queued > 0) await this.tail;
  }
}

/**
 * A serial queue per key (one deployment per app at a time): jobs of one key run in order, jobs of
 * different keys concurrently. A key's queue is dropped once it is empty.
 */
export class KeyedQueue {
  private readonly queues = new Map<string, SerialQueue>();

  run<T>(key: string, job: () => T | Promise<T>): Promise<T> {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = new SerialQueue();
      this.queues.set(key, queue);
    }
    const own = queue;
    const result = own.run(job);
    const drop = (): void => {
      if (!own.busy && this.queues.get(key) === own) this.queues.delete(key);
    };
    // After the queue's own bookkeeping (its tail settles first), so `busy` is current.
    result.then(() => queueMicrotask(drop), () => queueMicrotask(drop));
    return result;
  }

  /** Whether a job of `key` is queued or running (a new one would wait). */
  busy(key: string): boolean {
    return this.queues.get(key)?.busy ?? false;
  }

  /** Resolves once every job queued so far has settled. */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()].map((q) => q.idle()));
  }
}
