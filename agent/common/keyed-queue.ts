/**
 * Runs jobs one at a time per key, in the order they were queued (one deployment per app at a
 * time; STYLE.md: Vite's serial update queue). Jobs of different keys run concurrently.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(job, job);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Whether a job of `key` is queued or running (a new one would wait). */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Resolves once every job queued so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
