import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Pm2Client } from '../../agent/pm2/client.js';
import { tempDir } from './tmp.js';

/**
 * A PM2 home of its own for one test file (pm2 reads PM2_HOME at load and from its options: each
 * test file's daemon is separate). `cleanup` kills that daemon with its apps, then removes the home.
 */
export async function pm2Home(): Promise<{ home: string; cleanup: () => Promise<void> }> {
  // Short path: PM2's unix sockets live in the home, and socket paths are limited to ~100 bytes.
  const { dir, cleanup } = await tempDir('hd-pm2-');
  return {
    home: dir,
    async cleanup() {
      if (daemonPid(dir) !== undefined) {
        const client = new Pm2Client({ home: dir, callTimeoutMs: 10_000 });
        await client.killDaemon().catch(() => undefined);
      }
      await cleanup();
    },
  };
}

/** The pid of the daemon of `home`, if one is alive. */
export function daemonPid(home: string): number | undefined {
  const file = path.join(home, 'pm2.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8'));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. A probe
 * that never settles (a request a closing worker never answers) fails the wait at its deadline too,
 * naming what was awaited, instead of running into the test's own timeout with no word of where.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('a probe did not settle by the deadline')), Math.max(0, deadline - Date.now()));
    });
    try {
      const value = await Promise.race([Promise.resolve().then(probe), late]);
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}
