import { performance } from 'node:perf_hooks';
import { spawnServer, type ChildServer } from '../child.js';
import { ClosedLoop } from '../closed-loop.js';
import { pinServers } from '../pin.js';
import type { IndirectionFigure } from '../report.js';
import { median, medianInterval, round } from '../stats.js';

const MODULES = 200;
const CONNECTIONS = 10;
const SLICE_MS = 200;
/**
 * The warm-up's turns: under Node's `keepAliveTimeout` (5 s), after which a server closes a
 * connection left idle while the other side warms.
 */
const WARMUP_TURN_MS = 2_000;

export interface IndirectionOptions {
  rounds: number;
  /** Load on each server before anything is counted. */
  warmupSeconds: number;
  /** Groups of four slices (bare, hosted, hosted, bare or the mirror) counted per round. */
  groups: number;
}

type Side = 'bare' | 'hosted';

/**
 * Figure 4: req/s of the bare app and of the hosted one, each server in its own process, the load
 * from this one (ClosedLoop: the servers, not the load generator, are the bottleneck).
 * - Fresh processes each round, started in alternating order: two processes of the very same
 *   server keep a difference in req/s for their lifetime (what V8 compiled, and when), so the rounds
 *   are independent samples of it and the figure is the median of the rounds' own ratios.
 * - A warm-up of `warmupSeconds` a side, in turns of 2 s: the hosted server reaches its pace later
 *   than the bare one (more code for V8 to optimize, on a helper thread that shares the CPU with the
 *   server under load). Warmed 0.5 s a side, the rounds' median ratio sits near 0.77; warmed 1 s,
 *   near 0.95; from 4 s on, within a few hundredths of 1.
 * - Short turns: both loops stay connected and take turns in 200 ms slices, bare, hosted, hosted,
 *   bare (the mirror in every other group), so the machine's changes of speed, which on a shared VM last
 *   seconds, fall on both sides of a round alike.
 * - Pinned where `taskset` allows (pin.ts): both servers on one CPU, the generator on another.
 */
export async function indirectionFigure(options: IndirectionOptions): Promise<IndirectionFigure> {
  const rps: Record<Side, number[]> = { bare: [], hosted: [] };
  const ratios: number[] = [];
  const generatorCpu: number[] = [];
  const pinning = pinServers();
  const wrapper = typeof pinning === 'string' ? [] : pinning.serverCommand;
  try {
    for (let i = 0; i < options.rounds; i++) {
      const order: Side[] = i % 2 === 0 ? ['bare', 'hosted'] : ['hosted', 'bare'];
      const servers: ChildServer[] = [];
      const loops: Partial<Record<Side, ClosedLoop>> = {};
      try {
        for (const side of order) {
          const server = await spawnServer('serve-child.js', [side, String(MODULES)], wrapper);
          servers.push(server);
          loops[side] = await ClosedLoop.open(server.port, CONNECTIONS);
        }
        const loop = (side: Side): ClosedLoop => loops[side] as ClosedLoop;
        for (let warmed = 0; warmed < options.warmupSeconds * 1_000; warmed += WARMUP_TURN_MS) {
          for (const side of order) await loop(side).slice(Math.min(WARMUP_TURN_MS, options.warmupSeconds * 1_000 - warmed));
        }
        const sum: Record<Side, number> = { bare: 0, hosted: 0 };
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        for (let g = 0; g < options.groups; g++) {
          const [first, second] = (i + g) % 2 === 0 ? order : [order[1] as Side, order[0] as Side];
          for (const side of [first, second, second, first] as Side[]) sum[side] += await loop(side).slice(SLICE_MS);
        }
        const cpu = process.cpuUsage(cpuBefore);
        generatorCpu.push(((cpu.user + cpu.system) / 1_000 / (performance.now() - started)) * 100);
        const slices = options.groups * 2;
        rps.bare.push(sum.bare / slices);
        rps.hosted.push(sum.hosted / slices);
        ratios.push(sum.hosted / sum.bare);
      } finally {
        for (const l of Object.values(loops)) l.close();
        await Promise.all(servers.map((s) => s.stop()));
      }
    }
  } finally {
    if (typeof pinning !== 'string') pinning.restore();
  }
  // The median of the rounds' own ratios: a round's two sides share its pair of processes' luck and
  // its stretch of the machine, which a median of all bare runs against one of all hosted runs splits.
  const r = round(median(ratios), 4);
  const interval = medianInterval(ratios);
  return {
    rounds: options.rounds, warmupSeconds: options.warmupSeconds, sliceMs: SLICE_MS, slicesPerSide: options.groups * 2,
    connections: CONNECTIONS, pinning: typeof pinning === 'string' ? `none: ${pinning}` : pinning.description,
    generatorCpuPercent: round(median(generatorCpu), 0),
    bareRps: round(median(rps.bare), 0), hostedRps: round(median(rps.hosted), 0),
    roundRatios: ratios.map((x) => round(x, 3)), ratio: r, costPercent: round((1 - r) * 100, 2),
    costInterval: { low: round((1 - interval.high) * 100, 2), high: round((1 - interval.low) * 100, 2), confidence: round(interval.confidence, 3) },
  };
}
