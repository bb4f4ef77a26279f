import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Upper bound; the run ends earlier when `until` settles. */
  maxSeconds: number;
  /** Requests per second over all connections (a bounded load); omitted: as fast as the server answers. */
  overallRate?: number;
  until?: Promise<unknown>;
}

export interface LoadResult {
  requests: number;
  /** Connection errors (including timeouts), timeouts, and answers other than 2xx. */
  errors: number;
  timeouts: number;
  non2xx: number;
  failed: number;
  p99Ms: number;
  /** Answers per second over the run (autocannon's own clock). */
  rps: number;
  durationMs: number;
}

/**
 * Keep-alive load on loopback (autocannon: every connection stays open and sends the next request
 * when the answer arrived), bounded by `maxSeconds` and, when given, by `overallRate`.
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const instance = autocannon({
      url: options.url,
      connections: options.connections,
      duration: options.maxSeconds,
      timeout: 10,
      ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
    }, (err: Error | null, result: autocannon.Result) => {
      if (err) return reject(err);
      const failed = result.errors + result.non2xx;
      resolve({
        requests: result['2xx'] + result.non2xx + result.errors,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        failed,
        p99Ms: result.latency.p99,
        rps: result.duration > 0 ? result.requests.total / result.duration : 0,
        durationMs: Date.now() - started,
      });
    });
    const stop = (): void => instance.stop();
    options.until?.then(stop, stop);
  });
}
