import { hostApp } from '../../agent/runtime/host-app.js';
import type { UpdateResult } from '../../agent/messages.js';
import { appShape, generateApp } from '../app-gen.js';
import { runChild } from '../child.js';
import { ReleaseFarm } from '../releases.js';
import type { ApplyTimeFigure, ApplyTimeRow } from '../report.js';
import { summarize } from '../stats.js';
import { tempDir } from '../tmp.js';

export interface ApplyOptions {
  modules: number;
  iterations: number;
  /** Updates before measuring (the first updates also compile the runtime's own code paths). */
  warmup?: number;
  /** `esm`: the app as ES modules; `cjs-with-hooks`: CommonJS, with an ES module app hosted beside it (its hooks see every require). */
  kind?: 'cjs' | 'esm' | 'cjs-with-hooks';
}

/**
 * Figure 2, inside one process: host a generated app with `hostApp` and apply `iterations` updates of
 * each kind, alternating, each to a fresh release directory, reading `UpdateResult.durationMs`.
 */
export async function measureApply(options: ApplyOptions): Promise<ApplyTimeRow> {
  const shape = appShape(options.modules);
  const { dir: root, cleanup } = await tempDir('hd-bench-apply-');
  const farm = new ReleaseFarm(root);
  let n = 0;
  const state = { marker: 'm-0', hot: 'h-0' };
  // Exactly one module differs from the previous release: the marker leaf or the hot leaf.
  const release = (kind: 'leaf' | 'entry' | 'none') => {
    n += 1;
    if (kind === 'entry') state.marker = `m-${n}`;
    if (kind === 'leaf') state.hot = `h-${n}`;
    return farm.write(generateApp({ modules: options.modules, ...state, esm: options.kind === 'esm' }));
  };
  const beside = options.kind === 'cjs-with-hooks'
    ? await hostApp({ name: 'esm-beside', dir: await farm.write(generateApp({ modules: 3, marker: 'm', esm: true })) })
    : undefined;
  const app = await hostApp({ name: 'bench', dir: await release('none'), mode: 'handler', logger: { error: () => undefined, info: () => undefined } });
  const leaf: number[] = [];
  const entry: number[] = [];
  try {
    const warmup = options.warmup ?? 2;
    for (let i = 0; i < warmup + options.iterations; i++) {
      for (const kind of ['leaf', 'entry'] as const) {
        const result = await app.update(await release(kind));
        assertHot(result, kind, kind === 'leaf' ? 1 : shape.chainLength);
        if (i >= warmup) (kind === 'leaf' ? leaf : entry).push(result.durationMs);
      }
    }
  } finally {
    await app.close();
    await beside?.close();
    await cleanup();
  }
  return { modules: options.modules, leaf: summarize(leaf), entry: { ...summarize(entry), chainLength: shape.chainLength } };
}

function assertHot(result: UpdateResult, kind: string, disposed: number): void {
  if (result.outcome !== 'hot' || result.disposed.length !== disposed) {
    throw new Error(`a ${kind} update was not applied as measured: ${result.outcome}, disposed ${result.disposed.join(' ')} (expected ${disposed}) ${result.reason ?? result.error?.message ?? ''}`);
  }
}

/** Each size in a fresh child process, so one app's cache and heap never weigh on the next. */
export async function applyTimeFigure(sizes: number[], iterations: number): Promise<ApplyTimeFigure> {
  const rows: ApplyTimeRow[] = [];
  for (const modules of sizes) {
    rows.push(await runChild<ApplyTimeRow>('apply-child.js', [String(modules), String(iterations)], 300_000));
  }
  return { iterations, rows };
}
