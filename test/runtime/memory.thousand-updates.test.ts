import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { cleanupStack, repoRoot } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

// issue 2, item 7: 1,000 updates to fresh release directories (each deleted after the next one is
// current, as pruning would), each holding a large module; measured in a child process on the
// built runtime with --expose-gc, from the heap after the first update to the heap after the last
// (DESIGN.md: "within 2 MB of the heap after the first").
it('keeps heap growth under 2 MB and require.cache constant over 1,000 hot updates', async () => {
  const root = await t.root();
  const script = path.join(repoRoot, 'test/runtime/fixtures/memory-updates.mjs');
  const agent = path.join(repoRoot, 'dist/agent/index.js');
  const child = spawn(process.execPath, ['--expose-gc', script, agent, root, '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as { growth: number; cacheSizes: number[] };
  expect(report.cacheSizes).toHaveLength(1);
  expect(report.growth).toBeLessThan(2 * 1024 * 1024);
}, 120_000);
