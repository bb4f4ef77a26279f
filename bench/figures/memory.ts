import Module, { createRequire } from 'node:module';
import path from 'node:path';
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
export async function measureMemory(updates: number): Promise<Omit<MemoryFigure, 'controlHeapDelta'>> {
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

/** Node's CommonJS loader, as far as the control needs it (`Module._load` with no parent). */
const loader = Module as unknown as { _load(request: string, parent: null, isMain: boolean): unknown; _pathCache: Record<string, string> };

/**
 * The control, without hotdeploy: load the same app from a fresh directory `updates` times with
 * plain `require` machinery and evict the previous copy completely (require.cache, the path cache;
 * no parent, so no `module.children`). What the heap still gains is what Node itself keeps per
 * directory it has loaded modules from.
 */
export async function measureControl(updates: number): Promise<{ heapDelta: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const { dir: root, cleanup } = await tempDir('hd-bench-ctl-');
  try {
    const farm = new ReleaseFarm(root);
    let current: string | undefined;
    let heapAfterFirst = 0;
    for (let i = 0; i <= updates; i++) {
      const dir = await farm.write(memoryApp(`v${i}`, ITEMS));
      loader._load(path.join(dir, 'index.js'), null, false);
      if (current !== undefined) evict(current);
      current = dir;
      if (i === 1) heapAfterFirst = await settledHeap(gc);
    }
    return { heapDelta: (await settledHeap(gc)) - heapAfterFirst };
  } finally {
    await cleanup();
  }
}

function evict(dir: string): void {
  const prefix = dir + path.sep;
  for (const key of Object.keys(cache)) if (key.startsWith(prefix)) delete cache[key];
  for (const [key, value] of Object.entries(loader._pathCache)) if (value.startsWith(prefix)) delete loader._pathCache[key];
}

export async function memoryFigure(updates: number): Promise<MemoryFigure> {
  const hot = await runChild<MemoryFigure>('memory-child.js', ['hot', String(updates)], 600_000, ['--expose-gc']);
  const control = await runChild<{ heapDelta: number }>('memory-child.js', ['control', String(updates)], 600_000, ['--expose-gc']);
  return { ...hot, controlHeapDelta: control.heapDelta };
}
