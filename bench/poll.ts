import http from 'node:http';

/** Between two asks of one poller (bounds how late a poller can see the new code). */
export const POLL_GAP_MS = 1;

/**
 * Asks per keep-alive connection at most. An old worker that `pm2 reload` stops while a request of
 * ours is in flight on its connection keeps serving that connection (Node's `server.close` closes
 * only idle ones), so its `close` never completes and PM2 waits for its kill_timeout: the reload
 * would look slower because of the instrument. A new connection every few asks lets it go.
 */
export const ASKS_PER_CONNECTION = 10;

const POLLERS = 2;

/** How long a poller whose worker already serves the new code leaves the looking to the others. */
export const IDLE_MS = 100;

export interface Answer {
  marker: string;
  pid: number;
}

/** How an app's answer reads: the generated apps answer JSON with these two fields. */
export type ReadAnswer = (body: string) => Answer;

const readJson: ReadAnswer = (body) => JSON.parse(body) as Answer;

/**
 * One GET through `agent` (a keep-alive agent reuses its connection; `agent: false` opens a fresh
 * one); `read` makes an Answer of the body.
 */
export function ask(port: number, agent: http.Agent | false = false, read: ReadAnswer = readJson): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = agent === false ? { connection: 'close' } : {};
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /: ${res.statusCode} ${body}`));
        try {
          resolve(read(body));
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
 * being replaced) are retried: only the moment every worker serves the new code counts. `read`
 * makes an Answer of each body (JSON by default).
 *
 * Each poller keeps one keep-alive connection and asks on it until it answers with `marker` (or for
 * ASKS_PER_CONNECTION asks); then it drops the connection, so its next ask opens a new one, which
 * PM2's round robin hands to the next worker. A poller whose worker was the first seen with the new
 * code first leaves the other worker to the other poller for IDLE_MS (no hand-over in the middle of
 * the deploy), then looks again. So every worker is reached (a pid counts once), and
 * until the switch a worker answers on a connection it already holds — no connect and no hand-over
 * by the PM2 daemon (the cluster master) per ask: with a fresh connection per ask the daemon alone
 * uses several times the CPU during figure 1's hot deploys, taken from the deploy being measured.
 * Both sides get the same pollers: a `pm2 reload` closes an old worker's idle connections when the
 * worker stops (Node's `server.close`), and the poller reconnects to whichever worker is listening.
 */
export async function servingAt(port: number, marker: string, workers: number, timeoutMs: number, read: ReadAnswer = readJson): Promise<{ at: number; pids: number[] }> {
  const pids = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  let at = 0;
  /** Pollers that stopped because their worker serves the new code; one always keeps looking. */
  let idle = 0;
  let seenAll = (): void => undefined;
  const allSeen = new Promise<void>((resolve) => (seenAll = resolve));
  // Idle pollers wait for the others; an idle poller returns at once if the last active one threw.
  const poller = async (): Promise<void> => {
    let agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let asks = 0;
    const reconnect = (): void => {
      agent.destroy();
      agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      asks = 0;
    };
    try {
      while (at === 0) {
        if (performance.now() > deadline) throw new Error(`${workers} workers did not serve ${marker} within ${timeoutMs} ms (saw ${[...pids].join(', ') || 'none'})`);
        const answer = await ask(port, agent, read).catch(() => undefined);
        asks += 1;
        if (answer?.marker === marker && at === 0) {
          if (!pids.has(answer.pid)) {
            pids.add(answer.pid);
            if (pids.size >= workers) at = performance.now();
            // This poller's worker serves the new code: the other workers are the other pollers'
            // to watch for a while. Moving to another worker at once costs a connection (the PM2
            // daemon's hand-over, an accept) in the middle of the deploy being measured. After
            // IDLE_MS it looks again: a lone poller's ask can hang for its whole timeout when PM2
            // hands its new connection to a worker that is closing (as during `pm2 reload`).
            if (pids.size < workers && idle + 1 < POLLERS) {
              idle += 1;
              await Promise.race([allSeen, new Promise((resolve) => setTimeout(resolve, IDLE_MS))]);
              idle -= 1;
              if (at !== 0) return;
            }
          }
          reconnect();
          continue;
        }
        if (asks >= ASKS_PER_CONNECTION) reconnect();
        // A pause between asks, so the pollers do not take a core from the deploy being measured.
        await new Promise((resolve) => setTimeout(resolve, POLL_GAP_MS));
      }
    } finally {
      agent.destroy();
    }
  };
  // A poller that ends (all seen, or its deadline passed) wakes the idle ones, which then end too.
  await Promise.all(Array.from({ length: POLLERS }, () => poller().finally(seenAll)));
  return { at, pids: [...pids].sort((a, b) => a - b) };
}
