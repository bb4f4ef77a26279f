import type { BenchReport, Figures } from './report.js';

const ms = (v: number): string => `${v.toFixed(v < 10 ? 2 : 1)} ms`;
const mb = (v: number): string => `${(v / 1024 / 1024).toFixed(2)} MB`;

function figureLines(f: Partial<Figures>): string[] {
  const out: string[] = [];
  if (f.deployLatency) {
    const d = f.deployLatency;
    out.push(`1. Deploy latency, ${d.modules} modules, ${d.workers} PM2 cluster workers (median of ${d.hot.n} / ${d.reload.n})`,
      `   hotdeploy hot path   ${ms(d.hot.median)}  (min ${ms(d.hot.min)}, max ${ms(d.hot.max)}; outcomes ${d.hot.outcomes.join(', ')})`,
      `   from upload accepted ${ms(d.hotFromAccepted.median)}  (min ${ms(d.hotFromAccepted.min)}, max ${ms(d.hotFromAccepted.max)})`,
      `   hot phases (medians): PUT sent → accepted ${ms(d.hotPhases.ingest)}; from accepted: queued +${ms(d.hotPhases.queued)}, started +${ms(d.hotPhases.started)}, ` +
        `offering +${ms(d.hotPhases.offering)}, ` +
        (d.hotPhases.applied === undefined ? '' : `sent to every worker +${ms(d.hotPhases.sent ?? Number.NaN)}, received +${ms(d.hotPhases.received ?? Number.NaN)}, applied +${ms(d.hotPhases.applied)}, `) +
        `workers answered +${ms(d.hotPhases.workersAnswered)}, finished +${ms(d.hotPhases.finished)}; ` +
        `agent↔worker ${ms(d.hotPhases.worker)}, apply ${ms(d.hotPhases.apply)}` +
        (d.hotPhases.probe === undefined ? '' : `, health probe ${ms(d.hotPhases.probe)}`) + `; PUT answered ${ms(d.hotPhases.answered)}`,
      `   pm2 reload           ${ms(d.reload.median)}  (min ${ms(d.reload.min)}, max ${ms(d.reload.max)})`,
      `   ratio reload / hot   ${d.ratio}× (from upload accepted: ${d.ratioFromAccepted}×)`);
  }
  if (f.applyTime) {
    out.push(`2. In-worker apply time (UpdateResult.durationMs, ${f.applyTime.iterations} updates per kind)`,
      '   modules   leaf median / p99      to the entry median / p99 (chain)');
    for (const r of f.applyTime.rows) {
      out.push(`   ${String(r.modules).padStart(7)}   ${ms(r.leaf.median)} / ${ms(r.leaf.p99)}`.padEnd(36) +
        `${ms(r.entry.median)} / ${ms(r.entry.p99)} (${r.entry.chainLength} modules)`);
    }
  }
  if (f.underLoad) {
    const u = f.underLoad;
    out.push(`3. Keep-alive load, ${u.connections} connections, ≤ ${u.ratePerSecond} req/s`);
    for (const [label, s] of [['hot deploys', u.hot], ['pm2 reloads', u.reload]] as const) {
      out.push(`   during ${String(s.deploys).padStart(2)} ${label}: ${s.requests} requests, ${s.failed} failed (${s.errors} errors, ${s.timeouts} timeouts, ${s.non2xx} non-2xx), p99 ${s.p99Ms} ms, ${(s.durationMs / 1000).toFixed(1)} s`);
    }
  }
  if (f.indirection) {
    const i = f.indirection;
    out.push(i.sliceMs === undefined
      ? `4. Handler indirection (${i.rounds} rounds, each a fresh pair of servers run bare, hosted, hosted, bare or the mirror, ${i.secondsPerRound} s a run; median req/s, median of the rounds' ratios)`
      : `4. Handler indirection (${i.rounds} rounds, each a fresh pair of servers warmed ${i.warmupSeconds} s each, then ${i.slicesPerSide} turns of ${i.sliceMs} ms a side, ` +
        `${i.connections} keep-alive connections; ${i.pinning}; load generator at ${i.generatorCpuPercent}% of a CPU; median req/s, median of the rounds' ratios)`,
      `   bare ${i.bareRps} req/s, hosted ${i.hostedRps} req/s${i.roundRatios ? `; rounds ${i.roundRatios.join(', ')}` : ''}: ratio ${i.ratio}, cost ${i.costPercent}%` +
        (i.costInterval ? ` (${Math.round(i.costInterval.confidence * 100)}% interval of the median: ${i.costInterval.low}% to ${i.costInterval.high}%)` : ''));
  }
  if (f.memory) {
    const m = f.memory;
    out.push(`5. Memory over ${m.updates} hot updates of a module of ~100 KB of source holding ~${mb(m.objectBytes)}`,
      `   heap after 1: ${mb(m.heapAfterFirst)}, after ${m.updates}: ${mb(m.heapAfterLast)} (Δ ${mb(m.heapDelta)}, ${m.bytesPerUpdate} B per update); require.cache ${m.cacheAfterFirst} → ${m.cacheAfterLast}; outcomes ${m.outcomes.join(', ')}`,
      `   control, plain Node loading and evicting the same app from ${m.updates} fresh directories: Δ ${mb(m.controlHeapDelta)}`);
  }
  if (f.unpack) {
    const u = f.unpack;
    if (u.roundRatios) {
      out.push(`6. Unpack, ${u.files} files, ${mb(u.unpackedBytes)} unpacked, ${mb(u.bundleBytes)} .tgz (${u.service.n} rounds${u.warmUpRound ? ' after an untimed one' : ''}, each the two back to back in alternating order; medians, median of the rounds' ratios)`,
        `   upload + unpack via the service ${ms(u.service.median)}, tar -xzf ${ms(u.tar.median)}; rounds ${u.roundRatios.map((r) => `${r}×`).join(', ')}: ratio ${u.ratio}× (of the medians ${u.ratioOfMedians}×)`);
    } else {
      out.push(`6. Unpack, ${u.files} files, ${mb(u.unpackedBytes)} unpacked, ${mb(u.bundleBytes)} .tgz (median of ${u.service.n})`,
        `   upload + unpack via the service ${ms(u.service.median)}, tar -xzf ${ms(u.tar.median)}: ratio ${u.ratio}×`);
    }
  }
  if (f.esm) {
    const e = f.esm;
    const row = (label: string, r: typeof e.esm): string =>
      `   ${label.padEnd(24)} leaf ${ms(r.leaf.median)} / p99 ${ms(r.leaf.p99)}, to the entry ${ms(r.entry.median)} / p99 ${ms(r.entry.p99)} (${r.entry.chainLength} modules)`;
    const m = e.memory;
    out.push(`7. ES module apps, ${e.modules} modules (apply medians), and one worker's heap under the retired-source bound`,
      row('ES modules', e.esm), row('CommonJS', e.cjs), row('CommonJS, ESM hooks on', e.cjsWithHooks),
      `   ratio ESM / CommonJS ${e.ratio}× (worse kind)`,
      `   heap: ${m.hot} updates of a ~20 KB module under a ${mb(m.boundBytes)} bound, refused at ${m.refusedAt ?? 'none'}: Δ ${mb(m.heapGrowth)} (${m.growthOverBound} × the bound)`);
  }
  if (f.dependencies) {
    const d = f.dependencies;
    out.push(`8. Dependencies installed on the host: ${d.packages} packages, ${d.files} files in node_modules; the first push's npm ci ${ms(d.firstInstallMs)}; then ${d.rounds} one-file changes, lockfile unchanged (medians)`,
      `   node_modules step (a linked copy made after the last push renamed into place, else links to the current release) ${ms(d.step.median)} (min ${ms(d.step.min)}, max ${ms(d.step.max)})`,
      `   PUT → answered: with the lockfile ${ms(d.withDeps.median)}, the same app without ${ms(d.control.median)}: adds ${ms(d.added)}`);
  }
  if (f.pushCommand) {
    out.push(`9. What the user waits for: hotdeploy push <dir> of a one-file change, spawn → every worker serving it (${f.pushCommand.rounds} rounds a side, medians)`);
    for (const a of f.pushCommand.apps) {
      out.push(`   ${a.app} (${a.files} files): delta push ${ms(a.delta.median)} (first byte ${ms(a.firstByte.median)}); push --npm-pack ${ms(a.cliFull.median)} (${a.vsCliFull}×); `
        + `npm pack + upload + pm2 reload ${ms(a.packUploadReload.median)} (${a.vsPackUploadReload}×)`,
      `      bytes for a ${a.changedFileBytes} B file: ${a.bytesUp} B up, ${a.bytesDown} B down; a push of no change: ${a.overheadUp} B up, ${a.overheadDown} B down`);
      if (a.install) {
        out.push(`      node_modules on the host (${a.install.files} files): the first push's npm ci ${ms(a.install.firstMs)}, then linked from the current release ${ms(a.install.linkedStep.median)} (max ${ms(a.install.linkedStep.max)}, ${a.install.linkedStep.n} pushes)`);
      }
    }
  }
  if (f.natsFanout) {
    const n = f.natsFanout;
    out.push(`10. Fan-out over NATS JetStream: ${n.hosts} simulated hosts (real clients, consumers and unpacks; no PM2), the ${n.files}-file app, deployment start → every host (medians of ${n.updates} a side)`,
      `   hosts connected ${ms(n.connectMs)}; first start: every host prepared ${ms(n.firstStart.preparedMs)}, applied ${ms(n.firstStart.appliedMs)}`,
      `   a one-file change as a full bundle (${n.bundleBytes} B): prepared ${ms(n.bundle.prepared.median)}, applied ${ms(n.bundle.applied.median)}`,
      `   the same change as a delta (${n.deltaBytes} B): prepared ${ms(n.delta.prepared.median)}, applied ${ms(n.delta.applied.median)} (${n.ratio}×)`);
  }
  return out;
}

/** The human-readable table: every figure, then one PASS/MISS line per target. */
export function renderReport(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `hotdeploy benchmarks${report.quick ? ' (--quick)' : ''}: ${m.cpus} × ${m.cpuModel}, ${mb(m.memoryBytes)} RAM, Node ${m.node}, load ${m.loadAverage.join(' ')} at start`,
    '',
    ...figureLines(report.figures),
  ];
  for (const [name, error] of Object.entries(report.errors)) lines.push(`!! ${name} not measured: ${error}`);
  lines.push('', 'Targets');
  for (const t of report.targets) {
    lines.push(`   ${t.pass ? 'PASS' : 'MISS'}  ${t.description}: ${t.value}${t.unit ? ` ${t.unit}` : ''} (target ${t.limit})`);
  }
  if (report.notes.length > 0) lines.push('', ...report.notes.map((n) => `note: ${n}`));
  return lines.join('\n') + '\n';
}

/** The results as Markdown tables, for docs/BENCHMARKS.md (`--markdown`). */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `Measured ${report.startedAt} (${report.quick ? '`--quick`' : 'full run'}), ${m.cpus} × ${m.cpuModel}, ${mb(m.memoryBytes)} RAM, Node ${m.node}, ${m.platform}; load average at start ${m.loadAverage.join(' / ')}.`,
    '',
    '| Target | Measured | Limit | |',
    '| --- | --- | --- | --- |',
    ...report.targets.map((t) => `| ${t.description} | ${t.value}${t.unit ? ` ${t.unit}` : ''} | ${t.limit} | ${t.pass ? 'PASS' : '**MISS**'} |`),
    '',
    '```',
    ...figureLines(report.figures),
    ...Object.entries(report.errors).map(([name, error]) => `!! ${name} not measured: ${error}`),
    '```',
  ];
  if (report.notes.length > 0) lines.push('', ...report.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}
