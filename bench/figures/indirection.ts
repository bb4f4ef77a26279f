import { spawnServer } from '../child.js';
import { runLoad } from '../load.js';
import type { IndirectionFigure } from '../report.js';
import { median, round } from '../stats.js';

const MODULES = 200;
const CONNECTIONS = 10;

/**
 * Figure 4: req/s of the bare app and of the hosted one, each server in its own process and the
 * load from this one. Each of the `rounds` rounds starts a fresh pair of servers and runs each
 * twice, `secondsPerRound` a run, in mirrored order (bare, hosted, hosted, bare; the next round
 * hosted, bare, bare, hosted), and takes its ratio from the mean req/s of each side's two runs.
 * - Mirrored order: drift in a shared machine's load over the round, and any advantage of running
 *   first or second, fall on both sides alike. (With one run a side and the order alternating per
 *   round, an odd number of rounds — 3 in --quick — put bare first in two of the three ratios.)
 * - Fresh processes: two processes of the very same server differ by 10–17 % in req/s on the 2-core
 *   machine, and keep their difference for their lifetime (where the scheduler places them next to
 *   the load generator, their JIT-compiled code); with one pair for the whole figure that luck
 *   weighed on every round alike. A new pair per round makes the rounds independent samples of it.
 */
export async function indirectionFigure(rounds: number, secondsPerRound: number): Promise<IndirectionFigure> {
  const rps = { bare: [] as number[], hosted: [] as number[] };
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const bare = await spawnServer('serve-child.js', ['bare', String(MODULES)]);
    const hosted = await spawnServer('serve-child.js', ['hosted', String(MODULES)]).catch(async (err: unknown) => {
      await bare.stop();
      throw err;
    });
    try {
      // One short unmeasured run each: JIT warm-up of both servers and of the load generator.
      for (const s of [bare, hosted]) await runLoad({ url: `http://127.0.0.1:${s.port}/`, connections: CONNECTIONS, maxSeconds: 1 });
      const order = i % 2 === 0 ? (['bare', 'hosted', 'hosted', 'bare'] as const) : (['hosted', 'bare', 'bare', 'hosted'] as const);
      const sum = { bare: 0, hosted: 0 };
      for (const which of order) {
        const server = which === 'bare' ? bare : hosted;
        const result = await runLoad({ url: `http://127.0.0.1:${server.port}/`, connections: CONNECTIONS, maxSeconds: secondsPerRound });
        if (result.failed > 0) throw new Error(`${which}: ${result.failed} failed requests`);
        rps[which].push(result.rps);
        sum[which] += result.rps;
      }
      ratios.push(sum.hosted / sum.bare);
    } finally {
      await Promise.all([bare.stop(), hosted.stop()]);
    }
  }
  const bareRps = median(rps.bare);
  const hostedRps = median(rps.hosted);
  // The median of each round's own hosted/bare ratio: the runs of a round are back to back, so a
  // slow stretch of a shared machine falls on both sides of one ratio instead of on one median.
  const r = round(median(ratios), 4);
  return {
    rounds, secondsPerRound, bareRps: round(bareRps, 0), hostedRps: round(hostedRps, 0),
    roundRatios: ratios.map((x) => round(x, 3)), ratio: r, costPercent: round((1 - r) * 100, 2),
  };
}
