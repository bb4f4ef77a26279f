import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, repoRoot } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

interface Life {
  hot: number;
  refused?: { outcome: string; reason?: string };
  growth: number;
  sourceBytes: number;
}

/** One worker's life in a child process: updates from `first` on until one is refused. */
async function workerLife(root: string, first: number, updates: number, limit: { bytes: number; versions: number }): Promise<Life> {
  const script = path.join(repoRoot, 'test/runtime/fixtures/esm-memory-updates.mjs');
  const agent = path.join(repoRoot, 'dist/agent/index.js');
  const dir = path.join(root, `from-${first}`);
  await mkdir(dir);
  const args = ['--expose-gc', script, agent, dir, String(first), String(updates), String(limit.bytes), String(limit.versions)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout.trim().split('\n').pop()!) as Life;
}

/**
 * ES module records are never freed: each worker counts the source bytes of the versions it retired,
 * and the update that would take them past the bound is refused with `esm-retired-limit` (the
 * reload path: a fresh worker). Each version of the test's module holds about twice its ~20 KB
 * source in the heap (the source and its 20 KB string literal), so a worker's heap grows by at most
 * 3 × the bound + 2 MB. Over 1,000 updates, workers follow one another as PM2's reload would.
 */
it.runIf(esmHotSupported)('keeps each worker\'s heap under 3 × the retired-source bound + 2 MB over 1,000 updates, refusing exactly the update past it', async () => {
  const root = await t.root();
  const bound = 2 * 1024 * 1024;
  let done = 0;
  let workers = 0;
  let perWorker = 0;
  while (done < 1000) {
    const life = await workerLife(root, done + 1, 1000 - done, { bytes: bound, versions: 100_000 });
    workers += 1;
    perWorker = Math.floor(bound / life.sourceBytes);
    if (done + life.hot < 1000) {
      expect(life.hot).toBe(perWorker);
      expect(life.refused).toEqual({ outcome: 'unaccepted', reason: 'esm-retired-limit' });
    }
    expect(life.growth).toBeLessThan(3 * bound + 2 * 1024 * 1024);
    done += life.hot;
  }
  expect(workers).toBe(Math.ceil(1000 / perWorker));
}, 240_000);

it.runIf(esmHotSupported)('refuses the update that would retire one version more than the limit in versions', async () => {
  const root = await t.root();
  const life = await workerLife(root, 1, 20, { bytes: 1024 * 1024 * 1024, versions: 7 });
  expect(life.hot).toBe(7);
  expect(life.refused).toEqual({ outcome: 'unaccepted', reason: 'esm-retired-limit' });
}, 60_000);
