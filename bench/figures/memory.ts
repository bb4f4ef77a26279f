import { createRequire } from 'node:module';
import { hostApp } from '../../agent/runtime/host-app.js';
import { memoryApp } from '../app-gen.js';
import { runChild } from '../child.js';
import { ReleaseFarm } from '../releases.js';
import type { MemoryFigure } from '../report.js';
import { tempDir } from '../tmp.js';

const ITEMS = 50_000;
const cache = createRequire(import.meta.url).cache;

/** Full collections until the heap stops shrinking (finalizers and weak refs take more than one). */
async function settledHeap(gc: () => void): Promise<number> {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 6; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const used = process.memoryUsage().heapUsed;
    if (used >= last - 64 * 1024) return used;
    last = used;
  }
  return last;
}

/**
 * Figure 5, in a process started with --expose-gc: `updates` hot updates of `lib/big.js` (a
 * 50,000-string array, a fresh release directory each time); heap and require.cache measured after
 * the first and after the last, each after full collections.
 */
export async function measureMemory(updates: number): Promise<MemoryFigure> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const { dir: root, cleanup } = await tempDir('hd-bench-mem-');
  try {
    const farm = new ReleaseFarm(root);
    const app = await hostApp({ name: 'bench-memory', dir: await farm.write(memoryApp('v0', ITEMS)), mode: 'handler', drainTimeoutMs: 1_000 });
    const outcomes = new Set<string>();
    let heapAfterFirst = 0;
    let cacheAfterFirst = 0;
    for (let i = 1; i <= updates; i++) {
      const result = await app.update(await farm.write(memoryApp(`v${i}`, ITEMS)));
      outcomes.add(result.outcome);
      if (i === 1) {
        heapAfterFirst = await settledHeap(gc);
        cacheAfterFirst = Object.keys(cache).length;
      }
    }
    const heapAfterLast = await settledHeap(gc);
    const cacheAfterLast = Object.keys(cache).length;
    await app.close();
    // What the app held (mostly the large array): proof that the object was large.
    const objectBytes = Math.max(0, heapAfterLast - (await settledHeap(gc)));
    return {
      updates, objectBytes, heapAfterFirst, heapAfterLast, heapDelta: heapAfterLast - heapAfterFirst,
      cacheAfterFirst, cacheAfterLast, bytesPerUpdate: Math.round((heapAfterLast - heapAfterFirst) / Math.max(1, updates - 1)), outcomes: [...outcomes].sort(),
    };
  } finally {
    await cleanup();
  }
}

export function memoryFigure(updates: number): Promise<MemoryFigure> {
  return runChild<MemoryFigure>('memory-child.js', [String(updates)], 600_000, ['--expose-gc']);
}
