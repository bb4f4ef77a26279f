import { describe, expect, it } from 'vitest';
import { appShape, generateApp } from '../../bench/app-gen.js';
import { configFromArgs } from '../../bench/config.js';
import { measureApply } from '../../bench/figures/apply-time.js';
import { renderMarkdown, renderReport } from '../../bench/render.js';
import { evaluateTargets, machineInfo } from '../../bench/report.js';
import { assembleReport } from '../../bench/run.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { natsFanoutFigure } from '../../bench/figures/nats-fanout.js';
import { natsServerBinary } from '../helpers/nats-server.js';

// A micro run of the harness (figure 2 on a 200-module app, 2 updates per kind, in this process),
// so the bench code cannot rot unnoticed. No timing is asserted: only that it measures and reports.

describe('bench harness', () => {
  it('the generated app has the asked number of modules and one marker leaf', () => {
    const files = generateApp({ modules: 200, marker: 'x' });
    expect(Object.keys(files).filter((f) => f.endsWith('.js'))).toHaveLength(200);
    const shape = appShape(200);
    expect(files[shape.markerLeaf]).toContain('"x"');
    expect(Object.values(files).filter((c) => c.includes('"x"'))).toHaveLength(1);
  });

  it('--quick, --json and --only parse; an unknown figure is refused', () => {
    const c = configFromArgs(['--quick', '--json', '--only', 'applyTime,memory']);
    expect(c).toMatchObject({ quick: true, json: true, figures: ['applyTime', 'memory'] });
    expect(configFromArgs([]).figures).toHaveLength(esmHotSupported ? 10 : 9);
    expect(configFromArgs([]).hotDeploys).toBeGreaterThanOrEqual(10);
    expect(() => configFromArgs(['--only', 'nope'])).toThrow(/unknown figure nope/);
  });

  it('a micro run of figure 2 yields the --json shape with a judged target', async () => {
    const row = await measureApply({ modules: 200, iterations: 2, warmup: 0 });
    expect(row).toMatchObject({ modules: 200, leaf: { n: 2 }, entry: { n: 2, chainLength: appShape(200).chainLength } });
    expect(row.leaf.median).toBeGreaterThan(0);

    const config = configFromArgs(['--quick', '--only', 'applyTime']);
    const report = assembleReport(config, new Date().toISOString(), machineInfo(), { applyTime: { iterations: 2, rows: [row] } }, {});
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(Object.keys(json).sort()).toEqual(['errors', 'figures', 'finishedAt', 'machine', 'notes', 'quick', 'startedAt', 'targets']);
    expect(json.machine.cpus).toBeGreaterThan(0);
    expect(json.targets).toEqual([expect.objectContaining({ id: 'apply-200', figure: 'applyTime', value: expect.any(Number), pass: expect.any(Boolean) })]);
    expect(renderReport(json)).toMatch(/^ {3}(PASS|MISS) {2}in-worker apply at 200 modules/m);
    expect(renderMarkdown(json)).toMatch(/^\| in-worker apply at 200 modules \(median, worse kind\) \| [\d.]+ ms \| < 5 \| (PASS|\*\*MISS\*\*) \|$/m);
  });
});

describe('figure 9 (push command) targets', () => {
  it('judges each app\'s delta push, its ratios, its first byte and the bytes beyond the fixed overhead', () => {
    const s = (median: number) => ({ n: 3, median, p99: median, min: median, max: median });
    const app = {
      key: 'app' as const, app: 'a', files: 201, changedFileBytes: 600, delta: s(200), firstByte: s(60), cliFull: s(1_200), packUploadReload: s(5_000),
      bytesUp: 1_900, bytesDown: 3_000, overheadUp: 800, overheadDown: 2_900, vsCliFull: 6, vsPackUploadReload: 25,
    };
    const targets = evaluateTargets({ pushCommand: { rounds: 3, apps: [
      app,
      { ...app, key: 'express', app: 'b', delta: s(300) },
      { ...app, key: 'bundled-deps', app: 'c', delta: s(350), vsCliFull: 4 },
    ] } });
    const judged = Object.fromEntries(targets.map((t) => [t.id, t.pass]));
    expect(judged).toEqual({
      'push-delta-app': true, 'push-vs-cli-app': true, 'push-vs-reload-app': true, 'push-bytes-app': true, 'push-first-byte-app': true,
      'push-delta-express': false, 'push-vs-cli-express': true, 'push-vs-reload-express': true, 'push-bytes-express': true, 'push-first-byte-express': true,
      'push-delta-bundled-deps': true, 'push-vs-cli-bundled-deps': false, 'push-vs-reload-bundled-deps': true, 'push-bytes-bundled-deps': true, 'push-first-byte-bundled-deps': true,
    });
    expect(targets.find((t) => t.id === 'push-delta-express')).toMatchObject({ limit: '< 250' });
    expect(targets.find((t) => t.id === 'push-delta-bundled-deps')).toMatchObject({ limit: '< 400' });
    expect(targets.find((t) => t.id === 'push-bytes-app')).toMatchObject({ value: 1_100, limit: '≤ 1200' });
  });
});

describe.skipIf(natsServerBinary === undefined)('figure 10 (NATS fan-out)', () => {
  it('a micro run: every host takes the full bundle, then the delta, of a one-file change; judged bundle / delta', async () => {
    const figure = await natsFanoutFigure(3, 1, () => undefined);
    expect(figure).toMatchObject({ hosts: 3, updates: 1, files: 201, bundle: { applied: { n: 1 } }, delta: { applied: { n: 1 } } });
    expect(figure.deltaBytes).toBeLessThan(figure.bundleBytes / 10);
    expect(evaluateTargets({ natsFanout: figure })).toEqual([
      expect.objectContaining({ id: 'nats-fanout-delta', value: figure.ratio, limit: '≥ 1', pass: figure.ratio >= 1 }),
    ]);
    expect(renderReport(assembleReport(configFromArgs([]), new Date().toISOString(), machineInfo(), { natsFanout: figure }, {})))
      .toMatch(/^10\. Fan-out over NATS JetStream: 3 simulated hosts/m);
  }, 60_000);
});
