import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { Summary } from './stats.js';
import { round } from './stats.js';

/** Figure 1: upload accepted → every worker serving the new code, hot path vs `pm2 reload`. */
export interface DeployLatencyFigure {
  modules: number;
  workers: number;
  /**
   * PUT sent → every worker serves the new code and has answered the update, after its health probe
   * (upload, unpack, hashing and the probe included: a worker serves before its probe has run).
   */
  hot: Summary & { outcomes: string[] };
  /** Upload accepted (the deployment created) → every worker serves the new code: the clock the ratio target is judged on. */
  hotFromAccepted: Summary;
  /** `pm2 reload` called (the new files already on disk) → every (new) worker serves the new code. */
  reload: Summary;
  /**
   * Medians of the hot path's phases, ms. `ingest`: PUT sent → deployment created (upload, unpack,
   * hashing, release committed). From created: `queued` and `started` (the deployment's own events),
   * `offering` (the agent starts sending the update to the workers), `workersAnswered` (every worker
   * answered and the agent's pointer moved), `finished`. `worker`: the agent → worker → agent round
   * trip (slowest worker); `apply`: UpdateResult.durationMs (slowest worker); `probe`: the health
   * probe through the worker's handler (slowest worker); `answered`: PUT sent → response.
   */
  hotPhases: Record<'ingest' | 'queued' | 'started' | 'offering' | 'workersAnswered' | 'finished' | 'worker' | 'apply' | 'answered', number>
    & Partial<Record<'probe', number>>
    /** From the workers' own timestamps (WorkerReport.timing), slowest worker; absent when the workers gave none. */
    & Partial<Record<'sent' | 'received' | 'applied', number>>;
  /** Median reload / median hot (PUT sent → serving). */
  ratio: number;
  /** Median reload / median hot from upload accepted. */
  ratioFromAccepted: number;
}

export interface ApplyTimeRow {
  modules: number;
  /** A self-accepted leaf: only that module re-evaluates. */
  leaf: Summary;
  /** A leaf nobody accepts: the chain up to the entry re-evaluates and the handler swaps. */
  entry: Summary & { chainLength: number };
}

/** Figure 2: `UpdateResult.durationMs` inside one worker. */
export interface ApplyTimeFigure {
  iterations: number;
  rows: ApplyTimeRow[];
}

export interface LoadSide {
  deploys: number;
  requests: number;
  failed: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  p99Ms: number;
  durationMs: number;
}

/** Figure 3: keep-alive load during hot deploys vs during `pm2 reload`s. */
export interface UnderLoadFigure {
  connections: number;
  ratePerSecond: number;
  hot: LoadSide;
  reload: LoadSide;
}

/** Figure 4: the same app, bare vs through `HostedApp.handler`. */
export interface IndirectionFigure {
  rounds: number;
  /** Reports of the autocannon method only (one run of this long per side and turn). */
  secondsPerRound?: number;
  /** Reports of the ClosedLoop method only (200 ms turns), as are the next five. */
  warmupSeconds?: number;
  sliceMs?: number;
  /** Slices counted per side and round. */
  slicesPerSide?: number;
  connections?: number;
  /** Where the servers and the load generator ran (pin.ts), or why they were not pinned. */
  pinning?: string;
  /** The load generator's share of a CPU while counting (median of the rounds): well below 100 % means the servers were the bottleneck. */
  generatorCpuPercent?: number;
  bareRps: number;
  hostedRps: number;
  /** Each round's hosted / bare (absent from reports of the autocannon method). */
  roundRatios?: number[];
  /** hosted / bare: the median of the rounds' own ratios. */
  ratio: number;
  /** (1 - ratio) in percent: what the indirection costs. */
  costPercent: number;
  /** Where the cost lies with `confidence`, from the rounds' spread (stats.ts, medianInterval); absent from reports of the autocannon method. */
  costInterval?: { low: number; high: number; confidence: number };
}

/** Figure 5: heap and require.cache after the first and the last of many hot updates. */
export interface MemoryFigure {
  updates: number;
  objectBytes: number;
  heapAfterFirst: number;
  heapAfterLast: number;
  heapDelta: number;
  cacheAfterFirst: number;
  cacheAfterLast: number;
  /** heapDelta / (updates − 1). */
  bytesPerUpdate: number;
  /**
   * The control: the same app loaded from as many fresh directories by plain Node and evicted
   * completely, no hotdeploy. Its heap growth is what Node's loader itself keeps per directory.
   */
  controlHeapDelta: number;
  outcomes: string[];
}

/** Figure 6: a ~50 MB, 5,000-file bundle: upload + unpack through the service vs `tar -xzf`. */
export interface UnpackFigure {
  files: number;
  unpackedBytes: number;
  bundleBytes: number;
  service: Summary;
  tar: Summary;
  /**
   * Each round's service / tar, the two back to back (service first in even rounds, tar in odd).
   * Absent from reports of unpaired rounds, whose `ratio` is median service / median tar.
   */
  roundRatios?: number[];
  /** The median of `roundRatios`. */
  ratio: number;
  /** Median service / median tar, printed beside the paired figure. */
  ratioOfMedians?: number;
  /** Set when one untimed round of each side came first. */
  warmUpRound?: boolean;
}

/** ES module apps: apply time beside CommonJS at 200 modules, and one worker's heap under the retired bound. */
export interface EsmFigure {
  modules: number;
  esm: ApplyTimeRow;
  cjs: ApplyTimeRow;
  /** CommonJS with an ES module app hosted in the same process: the hooks see every require. */
  cjsWithHooks: ApplyTimeRow;
  /** ES module / CommonJS, medians of the worse kind. */
  ratio: number;
  memory: EsmMemoryRow;
}

export interface EsmMemoryRow {
  boundBytes: number;
  /** Updates applied hot before the bound refused one. */
  hot: number;
  /** The update refused with esm-retired-limit (null: none within the updates run). */
  refusedAt: number | null;
  /** Heap after gc at the end − after the first update. */
  heapGrowth: number;
  growthOverBound: number;
}

/**
 * Figure 8: a one-file change of an app whose node_modules the service installed (3,200 dependency
 * files), lockfile unchanged: the node_modules step links them from the current release.
 */
export interface DependenciesFigure {
  packages: number;
  /** Files under node_modules. */
  files: number;
  /** The first push's `npm ci` (offline, from a filled cache), ms. */
  firstInstallMs: number;
  rounds: number;
  /** The node_modules step of each later push (the release's `install.ms`: lockfile read, key, links). */
  step: Summary;
  /** PUT sent → answered (no worker runs the app), the app with its lockfile... */
  withDeps: Summary;
  /** ...and the same app without one, pushed alternately. */
  control: Summary;
  /** Median with − median without, ms. */
  added: number;
}

/**
 * Figure 9's apps, the key its target rows are named by: the example app (`examples/hello`), the
 * generated 200-module app, express-generator's app with its dependencies installed on the host
 * from its lockfile, and the 200-module app with 3,200 dependency files bundled.
 */
export type PushVariantKey = 'example' | 'app' | 'express' | 'bundled-deps';

/** The target for a delta push of each app, ms: the bundled one's 3,200 dependency files get more. */
export const PUSH_DELTA_LIMIT_MS: Record<PushVariantKey, number> = { example: 250, app: 250, express: 250, 'bundled-deps': 400 };

/** Figure 9, one app: `hotdeploy push <dir>` of a one-file change against its alternatives, and its bytes. */
export interface PushCommandApp {
  key: PushVariantKey;
  app: string;
  /** Files in the pushed folder (node_modules installed on the host not counted). */
  files: number;
  changedFileBytes: number;
  /** push (in-process pack, delta): spawn → every worker serves the change. */
  delta: Summary;
  /** The CLI's spawn → its first byte at the service (Node's start included). */
  firstByte: Summary;
  /** push --npm-pack (npm pack, full bundle), same change. */
  cliFull: Summary;
  /** npm pack + upload + pm2 reload of the same app as a plain PM2 program. */
  packUploadReload: Summary;
  /** Median bytes client → service and back for a one-file change, HTTP included. */
  bytesUp: number;
  bytesDown: number;
  /** The same for a push that changes nothing: the fixed overhead (manifest exchange, headers, the answer). */
  overheadUp: number;
  overheadDown: number;
  vsCliFull: number;
  vsPackUploadReload: number;
  /**
   * For an app whose node_modules the service installs: the first push's `npm ci` (offline, from the
   * filled cache) and the node_modules step of every later push (each linked from the current release).
   */
  install?: { files: number; firstMs: number; linkedStep: Summary };
}

export interface PushCommandFigure {
  rounds: number;
  apps: PushCommandApp[];
}

/** Figure 10: one deployment to every simulated host behind NATS, full bundles against deltas. */
export interface NatsFanoutFigure {
  hosts: number;
  /** One-file changes a side, after the first start. */
  updates: number;
  /** Files in the app (the 200-module app): a change is one of them. */
  files: number;
  bundleBytes: number;
  deltaBytes: number;
  /** Every host connected, its consumer made and reading commands. */
  connectMs: number;
  firstStart: { preparedMs: number; appliedMs: number };
  /** Deployment start → every host prepared (pulled and unpacked), and → every host applied. */
  bundle: { prepared: Summary; applied: Summary };
  delta: { prepared: Summary; applied: Summary };
  /** Median applied as full bundles / median applied as deltas. */
  ratio: number;
}

export interface Figures {
  deployLatency: DeployLatencyFigure;
  applyTime: ApplyTimeFigure;
  underLoad: UnderLoadFigure;
  indirection: IndirectionFigure;
  memory: MemoryFigure;
  unpack: UnpackFigure;
  esm: EsmFigure;
  dependencies: DependenciesFigure;
  pushCommand: PushCommandFigure;
  natsFanout: NatsFanoutFigure;
}

export type FigureName = keyof Figures;
export const FIGURE_NAMES: FigureName[] = ['deployLatency', 'applyTime', 'underLoad', 'indirection', 'memory', 'unpack', 'esm', 'dependencies', 'pushCommand', 'natsFanout'];

export interface Target {
  id: string;
  figure: FigureName;
  description: string;
  value: number;
  unit: string;
  limit: string;
  pass: boolean;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
  loadAverage: number[];
}

export interface BenchReport {
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  figures: Partial<Figures>;
  targets: Target[];
  /** Figures that could not be measured, with why. */
  errors: Partial<Record<FigureName, string>>;
  notes: string[];
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':')[1]?.trim() ?? cpuModel;
  } catch { /* not Linux: os.cpus() says it */ }
  return {
    cpus: os.availableParallelism(), cpuModel, memoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((l) => round(l)),
  };
}

/** The targets, judged on what was measured (a figure not measured has no target row). */
export function evaluateTargets(f: Partial<Figures>): Target[] {
  const out: Target[] = [];
  const add = (t: Omit<Target, 'pass'>, pass: boolean): void => void out.push({ ...t, pass });
  if (f.deployLatency) {
    const d = f.deployLatency;
    // The ratio target is on the clock from upload accepted and bounds the end-to-end time by
    // < 100 ms; the ratio from PUT sent (`d.ratio`) is printed with the figure, not judged.
    add({ id: 'deploy-ratio-accepted', figure: 'deployLatency', description: 'pm2 reload / hot deploy from upload accepted (medians)', value: d.ratioFromAccepted, unit: '×', limit: '≥ 50' }, d.ratioFromAccepted >= 50);
    add({ id: 'deploy-hot', figure: 'deployLatency', description: 'hot deploy, PUT sent → all workers serve it, probe passed (median)', value: d.hot.median, unit: 'ms', limit: '< 100' }, d.hot.median < 100);
    add({ id: 'deploy-hot-accepted', figure: 'deployLatency', description: 'hot deploy, upload accepted → all workers serve it, probe passed (median)', value: d.hotFromAccepted.median, unit: 'ms', limit: '< 100' }, d.hotFromAccepted.median < 100);
  }
  const row200 = f.applyTime?.rows.find((r) => r.modules === 200);
  if (row200) {
    const worst = Math.max(row200.leaf.median, row200.entry.median);
    add({ id: 'apply-200', figure: 'applyTime', description: 'in-worker apply at 200 modules (median, worse kind)', value: worst, unit: 'ms', limit: '< 5' }, worst < 5);
  }
  if (f.underLoad) {
    add({ id: 'load-failed', figure: 'underLoad', description: `failed requests during ${f.underLoad.hot.deploys} hot deploys`, value: f.underLoad.hot.failed, unit: '', limit: '= 0' }, f.underLoad.hot.failed === 0);
  }
  if (f.indirection) {
    add({ id: 'indirection', figure: 'indirection', description: 'throughput cost of the handler indirection', value: f.indirection.costPercent, unit: '%', limit: '≤ 3' }, f.indirection.costPercent <= 3);
  }
  if (f.memory) {
    const m = f.memory;
    const mb = round(m.heapDelta / 1024 / 1024);
    add({ id: 'memory-heap', figure: 'memory', description: `heap after ${m.updates} updates − after 1`, value: mb, unit: 'MB', limit: '≤ 2' }, Math.abs(m.heapDelta) <= 2 * 1024 * 1024);
    add({ id: 'memory-cache', figure: 'memory', description: 'require.cache entries, last − first', value: m.cacheAfterLast - m.cacheAfterFirst, unit: '', limit: '= 0' }, m.cacheAfterLast === m.cacheAfterFirst);
  }
  if (f.unpack) {
    add({ id: 'unpack', figure: 'unpack', description: 'upload + unpack / tar -xzf (median of the rounds\' ratios)', value: f.unpack.ratio, unit: '×', limit: '≤ 1.5' }, f.unpack.ratio <= 1.5);
  }
  if (f.esm) {
    const e = f.esm;
    add({ id: 'esm-apply-200', figure: 'esm', description: 'ES module / CommonJS apply at 200 modules (medians, worse kind)', value: e.ratio, unit: '×', limit: '≤ 2' }, e.ratio <= 2);
    const limit = 3 * e.memory.boundBytes + 2 * 1024 * 1024;
    add({ id: 'esm-heap', figure: 'esm', description: `ESM worker heap growth under a ${e.memory.boundBytes / 1024 / 1024} MiB bound, ${e.memory.hot} updates`, value: round(e.memory.heapGrowth / 1024 / 1024), unit: 'MB', limit: `≤ 3 × bound + 2 = ${round(limit / 1024 / 1024)}` }, e.memory.heapGrowth <= limit);
  }
  if (f.dependencies) {
    const d = f.dependencies;
    add({ id: 'deps-step', figure: 'dependencies', description: `node_modules step of a one-file change, ${d.files} dependency files, same lockfile (median)`, value: d.step.median, unit: 'ms', limit: '< 50' }, d.step.median < 50);
  }
  if (f.pushCommand) {
    for (const a of f.pushCommand.apps) {
      const limit = PUSH_DELTA_LIMIT_MS[a.key];
      const figure = 'pushCommand';
      add({ id: `push-delta-${a.key}`, figure, description: `hotdeploy push of a one-file change → every worker serving it, ${a.app} (median)`, value: a.delta.median, unit: 'ms', limit: `< ${limit}` }, a.delta.median < limit);
      add({ id: `push-vs-cli-${a.key}`, figure, description: `push --npm-pack (today's full bundle) / delta push, ${a.app}`, value: a.vsCliFull, unit: '×', limit: '≥ 5' }, a.vsCliFull >= 5);
      add({ id: `push-vs-reload-${a.key}`, figure, description: `npm pack + upload + pm2 reload / delta push, ${a.app}`, value: a.vsPackUploadReload, unit: '×', limit: '≥ 20' }, a.vsPackUploadReload >= 20);
      const sent = a.bytesUp - a.overheadUp;
      add({ id: `push-bytes-${a.key}`, figure, description: `bytes sent beyond the fixed overhead (${a.overheadUp} B up, ${a.overheadDown} B down) for a ${a.changedFileBytes} B file, ${a.app}`, value: sent, unit: 'B', limit: `≤ ${2 * a.changedFileBytes}` }, sent <= 2 * a.changedFileBytes);
      add({ id: `push-first-byte-${a.key}`, figure, description: `the CLI's start → its first byte at the service, ${a.app} (median)`, value: a.firstByte.median, unit: 'ms', limit: '< 80' }, a.firstByte.median < 80);
    }
  }
  if (f.natsFanout) {
    const n = f.natsFanout;
    add({ id: 'nats-fanout-delta', figure: 'natsFanout', description: `every one of ${n.hosts} NATS hosts applied a one-file change: as a full bundle / as a delta (medians)`, value: n.ratio, unit: '×', limit: '≥ 1' }, n.ratio >= 1);
  }
  return out;
}
