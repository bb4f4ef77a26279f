/** What `waitFor` polls: `undefined` or `false` means "not yet"; anything else is the answer. */
export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

/**
 * Polls `probe` until it answers (a value other than `undefined` or `false`) and resolves with that
 * answer; after `timeoutMs` it fails, naming `what` and the probe's last error. A probe that throws
 * is asked again (a server not listening yet); one that never settles (a request a closing worker
 * never answers) fails the wait at its deadline too. Polls every 5 ms at first, then less often,
 * up to every 100 ms. The one way tests wait for something they cannot get an event for.
 */
export async function waitFor<T>(what: string, probe: Probe<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let interval = 5;
  let last: unknown;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the probe did not settle by the deadline')), Math.max(0, deadline - Date.now()));
    });
    try {
      const answer = await Promise.race([Promise.resolve().then(probe), late]);
      if (answer !== undefined && answer !== false) return answer;
    } catch (err) {
      last = err;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(interval * 2, 100);
  }
  const why = last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}
