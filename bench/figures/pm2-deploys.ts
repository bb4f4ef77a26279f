import { generateApp } from '../app-gen.js';
import type { BenchConfig } from '../config.js';
import { packFiles } from '../bundle.js';
import { runLoad } from '../load.js';
import { servingAt } from '../poll.js';
import type { DeployLatencyFigure, LoadSide, UnderLoadFigure } from '../report.js';
import { freePort, type DeploymentAnswer, type PlainApp, type Stack, type TimedEvent } from '../stack.js';
import { median, ratio, round, summarize } from '../stats.js';
import { settle } from '../settle.js';

const MODULES = 200;
const WORKERS = 2;
const SERVE_TIMEOUT_MS = 60_000;

export type Pm2FigureOptions = Pick<BenchConfig, 'hotDeploys' | 'reloads' | 'loadHotDeploys' | 'loadReloads' | 'connections' | 'ratePerSecond'>;

/** hotdeploy's app `web` and the plain PM2 app, both 2 cluster workers of the same 200-module app. */
class Apps {
  private n = 0;

  constructor(readonly stack: Stack, readonly hotPort: number, readonly plain: PlainApp, readonly plainPort: number) {}

  static async start(stack: Stack): Promise<Apps> {
    const hotPort = await freePort();
    const first = await stack.upload('web', 'v0', await packFiles(generateApp({ modules: MODULES, marker: 'hot-0', port: hotPort, instances: WORKERS })));
    if (first.deployment?.status !== 'succeeded') throw new Error(`the first push did not start: ${JSON.stringify(first.deployment)}`);
    await servingAt(hotPort, 'hot-0', WORKERS, SERVE_TIMEOUT_MS);
    const plainPort = await freePort();
    const plain = await stack.startPlain('plain', MODULES, plainPort, 'plain-0');
    await servingAt(plainPort, 'plain-0', WORKERS, SERVE_TIMEOUT_MS);
    return new Apps(stack, hotPort, plain, plainPort);
  }

  /** The next one-module change of hotdeploy's app, packed (before any clock starts). */
  async nextBundle(): Promise<{ version: string; marker: string; bundle: Buffer }> {
    this.n += 1;
    const marker = `hot-${this.n}`;
    return { version: `v${this.n}`, marker, bundle: await packFiles(generateApp({ modules: MODULES, marker, port: this.hotPort, instances: WORKERS })) };
  }

  async hotDeploy(next: { version: string; bundle: Buffer }): Promise<DeploymentAnswer> {
    const answer = await this.stack.upload('web', next.version, next.bundle);
    if (answer.deployment?.status !== 'succeeded') throw new Error(`deploy ${next.version}: ${JSON.stringify(answer.deployment)}`);
    return answer;
  }

  async plainReload(): Promise<string> {
    this.n += 1;
    const marker = `plain-${this.n}`;
    await this.plain.change(marker);
    await this.plain.reload();
    return marker;
  }
}

/**
 * Figure 1: PUT sent → both workers answer with the new marker and have answered the update (after
 * their health probe); `pm2 reload` sent → both new workers answer with the new marker.
 */
async function deployLatency(apps: Apps, options: Pm2FigureOptions): Promise<DeployLatencyFigure> {
  const { hot, fromAccepted, phases, outcomes } = await hotDeploys(apps, options.hotDeploys);
  const reload: number[] = [];
  for (let i = 0; i <= options.reloads; i++) {
    const marker = `plain-r${i}`;
    await apps.plain.change(marker);
    await settle();
    const t0 = performance.now();
    const [, seen] = await Promise.all([apps.plain.reload(), servingAt(apps.plainPort, marker, WORKERS, SERVE_TIMEOUT_MS)]);
    if (i > 0) reload.push(seen.at - t0);
  }
  return {
    modules: MODULES, workers: WORKERS, hot: { ...summarize(hot), outcomes: [...outcomes].sort() }, reload: summarize(reload),
    hotFromAccepted: summarize(fromAccepted), hotPhases: medians(phases),
    ratio: ratio(median(reload), median(hot), 1),
    ratioFromAccepted: ratio(median(reload), median(fromAccepted), 1),
  };
}

/** `count` measured hot deploys (after one unmeasured: the first update also compiles the runtime's update paths). */
async function hotDeploys(apps: Apps, count: number): Promise<{ hot: number[]; fromAccepted: number[]; phases: PhaseSamples; outcomes: Set<string> }> {
  const hot: number[] = [];
  const fromAccepted: number[] = [];
  const phases = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as PhaseSamples;
  const outcomes = new Set<string>();
  const follow = apps.stack.follow('web');
  await follow.ready;
  const bundles = [];
  for (let i = 0; i <= count; i++) bundles.push(await apps.nextBundle());
  try {
    for (const [i, next] of bundles.entries()) {
      await settle();
      const t0 = performance.now();
      const wall0 = Date.now();
      const answered = apps.hotDeploy(next).then((answer) => ({ answer, at: performance.now() }));
      const [{ answer, at }, seen] = await Promise.all([answered, servingAt(apps.hotPort, next.marker, WORKERS, SERVE_TIMEOUT_MS)]);
      for (const w of answer.deployment?.workers ?? []) outcomes.add(w.outcome);
      if (i === 0) continue;
      // Workers serve the new code before they probe it: the deploy is done once every worker serves
      // it and has answered the update, which it does after its probe passed.
      const done = Math.max(seen.at - t0, probedAt(answer, wall0) ?? at - t0);
      hot.push(done);
      const ingest = addPhases(phases, answer, follow.events, wall0, at - t0);
      fromAccepted.push(done - ingest);
    }
  } finally {
    follow.stop();
  }
  return { hot, fromAccepted, phases, outcomes };
}

/**
 * When the slowest worker answered its update, after its health probe (the workers' clocks, this
 * machine's; ms after `wall0`); without the workers' timings, when the deployment finished.
 */
function probedAt(answer: DeploymentAnswer, wall0: number): number | undefined {
  const d = answer.deployment;
  const timings = d?.workers.map((w) => w.timing).filter((t) => t !== undefined) ?? [];
  if (d && timings.length === d.workers.length && timings.length > 0) return Math.max(...timings.map((t) => t.answeredAt)) - wall0;
  return d?.finishedAt ? Date.parse(d.finishedAt) - wall0 : undefined;
}

const PHASES = ['ingest', 'queued', 'started', 'offering', 'sent', 'received', 'applied', 'workersAnswered', 'finished', 'worker', 'apply', 'probe', 'answered'] as const;
type PhaseSamples = Record<(typeof PHASES)[number], number[]>;

/**
 * Where a hot deploy's time went, from the deployment the PUT answered with and the deployment's
 * server-sent events (the server's clock, the same machine's as this process's `Date.now()`).
 */
function addPhases(into: PhaseSamples, answer: DeploymentAnswer, events: Map<string, TimedEvent[]>, wall0: number, answeredMs: number): number {
  const d = answer.deployment;
  if (!d) throw new Error('the upload answered without a deployment');
  const created = Date.parse(d.createdAt);
  const list = events.get(d.id) ?? [];
  const when = (match: (e: TimedEvent) => boolean): void | number => {
    const e = list.find(match);
    return e ? e.at - created : undefined;
  };
  const push = (phase: keyof PhaseSamples, value: void | number): void => {
    if (typeof value === 'number') into[phase].push(value);
  };
  push('ingest', created - wall0);
  push('queued', when((e) => e.type === 'queued'));
  push('started', when((e) => e.type === 'started'));
  push('offering', when((e) => e.type === 'agent' && e.message.startsWith('offering')));
  // The workers' own clocks (the same machine's): the slowest worker's update sent, received, applied.
  const timings = d.workers.map((w) => w.timing).filter((t) => t !== undefined);
  const slowest = (pick: (t: (typeof timings)[number]) => number): number | undefined =>
    timings.length === d.workers.length && timings.length > 0 ? Math.max(...timings.map(pick)) - created : undefined;
  push('sent', slowest((t) => t.sentAt));
  push('received', slowest((t) => t.receivedAt));
  push('applied', slowest((t) => t.answeredAt));
  push('workersAnswered', when((e) => e.type === 'agent' && e.message.startsWith('worker ')));
  push('finished', d.finishedAt ? Date.parse(d.finishedAt) - created : undefined);
  push('worker', Math.max(0, ...d.workers.map((w) => w.durationMs)));
  push('apply', Math.max(0, ...d.workers.map((w) => w.update?.durationMs ?? 0)));
  if (d.workers.some((w) => w.probe)) push('probe', Math.max(...d.workers.map((w) => w.probe?.durationMs ?? 0)));
  push('answered', answeredMs);
  return created - wall0;
}

function medians(samples: PhaseSamples): DeployLatencyFigure['hotPhases'] {
  return Object.fromEntries(PHASES.map((p) => [p, samples[p].length > 0 ? round(median(samples[p])) : Number.NaN])) as DeployLatencyFigure['hotPhases'];
}

/** Figure 3: keep-alive load on each app while it is deployed to, back to back. */
async function underLoad(apps: Apps, options: Pm2FigureOptions): Promise<UnderLoadFigure> {
  const bundles = [];
  for (let i = 0; i < options.loadHotDeploys; i++) bundles.push(await apps.nextBundle());
  const hotDeploys = (async () => {
    for (const next of bundles) await apps.hotDeploy(next);
  })();
  const hot = await runLoad({ url: `http://127.0.0.1:${apps.hotPort}/`, connections: options.connections, overallRate: options.ratePerSecond, maxSeconds: 300, until: hotDeploys });
  await hotDeploys;
  const last = bundles.at(-1);
  if (last) await servingAt(apps.hotPort, last.marker, WORKERS, SERVE_TIMEOUT_MS);

  const reloads = (async () => {
    for (let i = 0; i < options.loadReloads; i++) await apps.plainReload();
  })();
  const reload = await runLoad({ url: `http://127.0.0.1:${apps.plainPort}/`, connections: options.connections, overallRate: options.ratePerSecond, maxSeconds: 300, until: reloads });
  await reloads;
  const side = (deploys: number, r: typeof hot): LoadSide => ({
    deploys, requests: r.requests, failed: r.failed, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, p99Ms: r.p99Ms, durationMs: r.durationMs,
  });
  return { connections: options.connections, ratePerSecond: options.ratePerSecond, hot: side(options.loadHotDeploys, hot), reload: side(options.loadReloads, reload) };
}

export async function pm2Figures(stack: Stack, options: Pm2FigureOptions, want: { deployLatency: boolean; underLoad: boolean }):
Promise<{ deployLatency?: DeployLatencyFigure; underLoad?: UnderLoadFigure }> {
  const apps = await Apps.start(stack);
  try {
    return {
      ...(want.deployLatency ? { deployLatency: await deployLatency(apps, options) } : {}),
      ...(want.underLoad ? { underLoad: await underLoad(apps, options) } : {}),
    };
  } finally {
    apps.plain.close();
  }
}
