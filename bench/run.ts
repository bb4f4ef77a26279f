import type { BenchConfig } from './config.js';
import { quickNotes } from './config.js';
import { applyTimeFigure } from './figures/apply-time.js';
import { dependenciesFigure } from './figures/dependencies.js';
import { esmFigure } from './figures/esm.js';
import { indirectionFigure } from './figures/indirection.js';
import { memoryFigure } from './figures/memory.js';
import { natsFanoutInChild } from './figures/nats-fanout.js';
import { pm2Figures } from './figures/pm2-deploys.js';
import { pushCommandFigure } from './figures/push-command.js';
import { unpackFigure } from './figures/unpack.js';
import { evaluateTargets, machineInfo, type BenchReport, type FigureName, type Figures, type MachineInfo } from './report.js';
import { Stack } from './stack.js';
import { tempDir } from './tmp.js';
import { natsServerBinary } from '../test/helpers/nats-server.js';

type Progress = (message: string) => void;

/**
 * Runs the figures the config names, each against its alternative in this same run. A figure that
 * fails is reported as not measured (with why); the others still run.
 */
export async function runBench(config: BenchConfig, progress: Progress = () => undefined): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const figures: Partial<Figures> = {};
  const errors: Partial<Record<FigureName, string>> = {};
  /** Figures left out for a missing tool: a note, not an error. */
  const skipped: string[] = [];
  const want = (name: FigureName): boolean => config.figures.includes(name);
  const attempt = async <K extends FigureName>(name: K, run: () => Promise<Figures[K]>): Promise<void> => {
    if (!want(name)) return;
    progress(`measuring ${name}`);
    const t0 = Date.now();
    try {
      figures[name] = await run();
    } catch (err) {
      errors[name] = err instanceof Error ? err.message : String(err);
    }
    progress(`${name}: ${errors[name] ? `failed (${errors[name]})` : 'done'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };

  // First, on a file system the other figures have not just emptied; its hosts' folders go at the end.
  const fanoutDir = await tempDir('hd-bench-fanout-');
  if (want('natsFanout') && natsServerBinary === undefined) {
    skipped.push('figure 10 (natsFanout) not measured: nats-server is not installed (apt-get install nats-server, or put a nats-server 2.9+ on PATH)');
  } else {
    await attempt('natsFanout', () => natsFanoutInChild(config.natsHosts, config.natsUpdates, fanoutDir.dir));
  }
  try {
    await attempt('applyTime', () => applyTimeFigure(config.applySizes, config.applyIterations));
    await attempt('memory', () => memoryFigure(config.memoryUpdates));
    await attempt('esm', () => esmFigure(config.applyIterations, config.memoryUpdates));
    await attempt('dependencies', () => dependenciesFigure(config.dependencyRounds));
    await attempt('indirection', () => indirectionFigure({ rounds: config.indirectionRounds, warmupSeconds: config.indirectionWarmupSeconds, groups: config.indirectionGroups }));
    if (want('deployLatency') || want('underLoad') || want('unpack') || want('pushCommand')) {
      progress('starting the deploy service, a PM2 daemon and both apps');
      const stack = await Stack.start();
      const stop = (): void => void stack.close().finally(() => process.exit(130));
      process.once('SIGINT', stop);
      try {
        if (want('deployLatency') || want('underLoad')) {
          const t0 = Date.now();
          try {
            Object.assign(figures, await pm2Figures(stack, config, { deployLatency: want('deployLatency'), underLoad: want('underLoad') }));
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            for (const name of ['deployLatency', 'underLoad'] as const) if (want(name) && !figures[name]) errors[name] = message;
          }
          progress(`deployLatency, underLoad: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        }
        await attempt('unpack', () => unpackFigure(stack, config.unpackRounds));
        await attempt('pushCommand', () => pushCommandFigure(stack, config.pushRounds, progress));
      } finally {
        process.off('SIGINT', stop);
        await stack.close();
      }
    }
  } finally {
    await fanoutDir.cleanup();
  }
  return assembleReport(config, startedAt, machine, figures, errors, skipped);
}

/** The report object `--json` prints: every figure measured, the targets judged on them, why others are missing. */
export function assembleReport(config: BenchConfig, startedAt: string, machine: MachineInfo, figures: Partial<Figures>,
  errors: Partial<Record<FigureName, string>>, skipped: string[] = []): BenchReport {
  return {
    quick: config.quick, startedAt, finishedAt: new Date().toISOString(), machine, figures,
    targets: evaluateTargets(figures), errors, notes: [...skipped, ...quickNotes(config)],
  };
}
