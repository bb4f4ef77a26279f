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

