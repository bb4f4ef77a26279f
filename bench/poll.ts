import http from 'node:http';

/** Between two asks of one poller (bounds how late a poller can see the new code). */
export const POLL_GAP_MS = 1;

export interface Answer {
  marker: string;
  pid: number;
}

/** One GET on a fresh connection (PM2's cluster mode hands each new connection to the next worker). */
export function ask(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /: ${res.statusCode} ${body}`));
        try {
          resolve(JSON.parse(body) as Answer);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error('GET / timed out')));
    req.on('error', reject);
  });
}

/**
 * Polls the app (two concurrent pollers) until `workers` distinct pids answered with `marker`, and
 * resolves with `performance.now()` at the answer that completed the set. Connection errors (a worker
 * being replaced) are retried: only the moment every worker serves the new code counts.
 */
export async function servingAt(port: number, marker: string, workers: number, timeoutMs: number): Promise<{ at: number; pids: number[] }> {
  const pids = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  let at = 0;
  const poller = async (): Promise<void> => {
    while (at === 0) {
      if (performance.now() > deadline) throw new Error(`${workers} workers did not serve ${marker} within ${timeoutMs} ms (saw ${[...pids].join(', ') || 'none'})`);
      const answer = await ask(port).catch(() => undefined);
      if (answer?.marker === marker && at === 0) {
        pids.add(answer.pid);
        if (pids.size >= workers) at = performance.now();
        continue;
      }
      // A pause between asks: back to back, two pollers on fresh connections took most of a core
      // (the PM2 daemon hands every connection over) from the deploy being measured, on both
      // sides; the pause costs at most POLL_GAP_MS of detection, counted against the deploy.
      await new Promise((resolve) => setTimeout(resolve, POLL_GAP_MS));
    }
  };
  await Promise.all([poller(), poller()]);
  return { at, pids: [...pids].sort((a, b) => a - b) };
}
