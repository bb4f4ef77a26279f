import { parseArgs } from 'node:util';
import { esmHotSupported } from '../agent/runtime/esm-hooks.js';
import { FIGURE_NAMES, type FigureName } from './report.js';

export interface BenchConfig {
  quick: boolean;
  json: boolean;
  markdown: boolean;
  /** Render a report saved by an earlier `--json` run instead of measuring. */
  from: string | undefined;
  figures: FigureName[];
  hotDeploys: number;
  reloads: number;
  loadHotDeploys: number;
  loadReloads: number;
  connections: number;
  ratePerSecond: number;
  applySizes: number[];
  applyIterations: number;
  indirectionRounds: number;
  indirectionWarmupSeconds: number;
  indirectionGroups: number;
  memoryUpdates: number;
  unpackRounds: number;
  dependencyRounds: number;
  pushRounds: number;
  natsHosts: number;
  natsUpdates: number;
}

/** The counts the targets are judged on; `--quick` lowers the repeated ones (the report says which) to stay under 2 minutes. */
export function configFromArgs(argv: string[]): BenchConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      markdown: { type: 'boolean', default: false },
      only: { type: 'string' },
      from: { type: 'string' },
    },
    strict: true,
  });
  // Figure 7 needs a Node line that hot-swaps ES modules; elsewhere only `--only esm` asks for it.
  const all = esmHotSupported ? FIGURE_NAMES : FIGURE_NAMES.filter((name) => name !== 'esm');
  const figures = values.only === undefined ? all : values.only.split(',').map((name) => {
    if (!(FIGURE_NAMES as string[]).includes(name)) throw new Error(`--only: unknown figure ${name} (one of ${FIGURE_NAMES.join(', ')})`);
    return name as FigureName;
  });
  const quick = values.quick ?? false;
  return {
    quick,
    json: values.json ?? false,
    markdown: values.markdown ?? false,
    from: values.from,
    figures,
    hotDeploys: quick ? 10 : 20,
    reloads: quick ? 3 : 10,
    loadHotDeploys: quick ? 20 : 50,
    loadReloads: 3,
    connections: 20,
    ratePerSecond: 1_000,
    applySizes: [50, 200, 1_000],
    applyIterations: quick ? 15 : 100,
    indirectionRounds: quick ? 3 : 16,
    indirectionWarmupSeconds: quick ? 3 : 10,
    indirectionGroups: quick ? 2 : 4,
    memoryUpdates: quick ? 100 : 1_000,
    unpackRounds: quick ? 2 : 6,
    dependencyRounds: quick ? 5 : 20,
    pushRounds: quick ? 3 : 10,
    natsHosts: 200,
    natsUpdates: quick ? 1 : 3,
  };
}

/** What `--quick` measured below the targets' counts, for the report's notes. */
export function quickNotes(c: BenchConfig): string[] {
  if (!c.quick) return [];
  return [
    `--quick: ${c.hotDeploys} hot deploys and ${c.reloads} pm2 reloads for figure 1 (the target: ≥ 10 each)`,
    `--quick: ${c.applyIterations} updates per kind and size for figure 2`,
    `--quick: ${c.loadHotDeploys} hot deploys under load for figure 3 (the target: 50)`,
    `--quick: ${c.indirectionRounds} rounds for figure 4, each warmed ${c.indirectionWarmupSeconds} s a side and counting ${c.indirectionGroups * 2} turns a side`,
    `--quick: ${c.memoryUpdates} updates for figure 5 (the target: 1,000)`,
    `--quick: ${c.unpackRounds} rounds for figure 6`,
    `--quick: ${c.dependencyRounds} one-file changes for figure 8`,
    `--quick: ${c.pushRounds} one-file changes per side and app for figure 9`,
    `--quick: ${c.natsUpdates} one-file change a side for figure 10`,
  ];
}
