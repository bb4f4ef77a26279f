import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { repoRoot } from '../helpers/release.js';

// The 1,000 releases (25,000 files written and deleted) live in memory where the machine has a
// tmpfs: the test measures the heap, and on a disk mounted with `discard` the deletions alone take
// most of a minute.
let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

interface Report {
  node: string;
  growth: number;
  cacheSizes: number[];
  /** Heap that only the snapshot's collection freed: what V8's compilation cache held. */
  freedBySnapshotGc: number;
  /** Strings of an evicted big.js still reachable in a heap snapshot, with what retains them. */
  retained: { text: string; bytes: number; chain: string[] }[];
}

const MB = 1024 * 1024;

// 1,000 updates of a 21-module app whose leaf holds ~100 KB of source and ~300 KB of objects, each
// to a fresh release directory (deleted after the next one is current, as pruning would), measured
// in a child process on the built runtime with --expose-gc, from the heap after the first update to
// the heap after the last. With app modules compiled inside V8's compilation cache, Node 22 and 24
// keep every version's source there (about +177 MB over the 1,000 updates).
it('keeps heap growth under 2 MB and require.cache constant over 1,000 hot updates of a large module', async () => {
  root = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'hd-memory-'));
  const script = path.join(repoRoot, 'test/runtime/fixtures/memory-updates.mjs');
  const agent = path.join(repoRoot, 'dist/agent/index.js');
  const child = spawn(process.execPath, ['--expose-gc', script, agent, root, '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as Report;
  expect(report.node).toBe(process.version);
  expect(report.cacheSizes).toHaveLength(1);
  // A later version in the snapshot: something in the runtime or Node's loader keeps each update.
  // The first one may stay: the modules it loaded first and that never changed (dep) keep it as
  // their parent (`module.parent`, and on Node 22+ a second, private field the runtime cannot clear).
  const later = report.retained.filter((r) => !r.text.includes('release 0;'));
  expect(later, JSON.stringify(later, null, 2)).toEqual([]);
  const why = `${report.node}: +${(report.growth / MB).toFixed(2)} MB, of which ${(report.freedBySnapshotGc / MB).toFixed(2)} MB ` +
    "only a heap snapshot's collection freed (it clears V8's compilation cache first)";
  expect(report.growth, why).toBeLessThan(2 * MB);
}, 180_000);
