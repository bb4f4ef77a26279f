import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { hostApp } from '../../agent/runtime/host-app.js';
import { runChild } from '../child.js';
import type { ApplyTimeRow, EsmFigure, EsmMemoryRow } from '../report.js';
import { tempDir } from '../tmp.js';

const MODULES = 200;

/**
 * ES module apps: the in-worker apply time of the same 200-module app as ES modules and as
 * CommonJS, and CommonJS with the ES module hooks present in the process; then the heap of one
 * worker over up to `updates` updates of a ~20 KB module under a retired-source bound.
 */
export async function esmFigure(iterations: number, updates: number): Promise<EsmFigure> {
  if (!esmHotSupported) throw new Error(`Node ${process.version} has no module.registerHooks: ES module apps take the reload path`);
  const apply = async (kind: string): Promise<ApplyTimeRow> =>
    runChild<ApplyTimeRow>('esm-child.js', ['apply', kind, String(MODULES), String(iterations)], 300_000);
  const esm = await apply('esm');
  const cjs = await apply('cjs');
  const cjsWithHooks = await apply('cjs-with-hooks');
  const worst = (r: ApplyTimeRow): number => Math.max(r.leaf.median, r.entry.median);
  const bound = 8 * 1024 * 1024;
  const memory = await runChild<EsmMemoryRow>('esm-child.js', ['memory', String(updates), String(bound)], 300_000, ['--expose-gc']);
  return { modules: MODULES, esm, cjs, cjsWithHooks, ratio: round(worst(esm) / worst(cjs)), memory };
}

/** One worker's life: updates of a ~20 KB module until `updates` or the bound refuses one. */
export async function measureEsmMemory(updates: number, boundBytes: number): Promise<EsmMemoryRow> {
  const { dir: root, cleanup } = await tempDir('hd-bench-esm-memory-');
  const filler = 'x'.repeat(20_000);
  const release = async (i: number): Promise<string> => {
    const dir = path.join(root, `r${i}`);
    await mkdir(dir);
    await writeFile(path.join(dir, 'package.json'), '{"name":"esm-memory","version":"1.0.0","type":"module","main":"index.js"}');
    await writeFile(path.join(dir, 'index.js'), "import * as first from './big.js';\nlet big = first;\n" +
      "import.meta.hot.accept('./big.js', (ns) => { big = ns; });\nexport default (req, res) => res.end(String(big.items.length));\n");
    const v = JSON.stringify(String(i).padStart(6, '0'));
    await writeFile(path.join(dir, 'big.js'), `const filler = '${filler}';\nexport const version = ${v};\n` +
      `export const items = Array.from({ length: 100 }, (_, n) => ({ n, s: 'item-' + n + '-' + ${v} + filler.slice(0, 1) }));\n`);
    return dir;
  };
  const settle = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      await tick();
      (globalThis as unknown as { gc: () => void }).gc();
    }
    return process.memoryUsage().heapUsed;
  };
  let previous = await release(0);
  const app = await hostApp({ name: 'esm-memory', dir: previous, logger: { error: () => undefined, info: () => undefined }, esmRetiredLimit: { bytes: boundBytes } });
  let hot = 0;
  let warm = 0;
  let refusedAt: number | undefined;
  try {
    for (let i = 1; i <= updates; i++) {
      const dir = await release(i);
      const result = await app.update(dir);
      if (result.outcome !== 'hot') {
        if (result.reason !== 'esm-retired-limit') throw new Error(`update ${i}: ${result.outcome} ${result.reason ?? result.error?.message ?? ''}`);
        refusedAt = i;
        break;
      }
      hot += 1;
      await rm(previous, { recursive: true });
      previous = dir;
      if (hot === 1) warm = await settle();
    }
    const end = await settle();
    return { boundBytes, hot, refusedAt: refusedAt ?? null, heapGrowth: end - warm, growthOverBound: round((end - warm) / boundBytes) };
  } finally {
    await app.close();
    await cleanup();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
