import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlerApp } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { HOTDEPLOY_TOKEN, push, rollback, startHotdeploy, type Hotdeploy } from '../helpers/hotdeploy.js';
import { parsePrometheus, prometheusParserMissing, samples, value, type Family } from '../helpers/prometheus.js';
import { get, testServer, TOKENS, type TestServer } from '../helpers/server.js';

const missing = await prometheusParserMissing();
if (missing) console.warn(`skipping the metrics scrape test: ${missing}`);
// Prometheus' own linter of the format and its naming rules (Debian's prometheus package), when installed.
const promtool = await promisify(execFile)('promtool', ['--version']).then(() => undefined, () => 'promtool is not installed (apt-get install prometheus)');
if (promtool) console.warn(`skipping the promtool check of a scrape: ${promtool}`);

describe.skipIf(missing !== undefined)('GET /metrics after real deploys under PM2', () => {
  let hd: Hotdeploy;
  let families: Family[];
  let text: string;

  beforeAll(async () => {
    hd = await startHotdeploy();
    const port = await freePort();
    const app = (version: string, message: string, indexJs?: string) =>
      handlerApp({ name: 'demo', version, port, message, ...(indexJs ? { indexJs } : {}) });
    expect((await push(hd, 'demo', '1.0.0', app('1.0.0', 'one'))).deployment.status).toBe('succeeded');
    expect((await push(hd, 'demo', '2.0.0', app('2.0.0', 'two'))).deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    // Only the entry changes and it throws: the hot update fails, the trial start too, rolled back.
    expect((await push(hd, 'demo', '3.0.0', app('3.0.0', 'two', 'throw new Error("boom");\n'))).deployment.status).toBe('rolled-back');
    expect((await rollback(hd, 'demo')).status).toBe('succeeded');
    const refused = await fetch(`${hd.url}/v1/apps/demo/releases/4.0.0`, {
      method: 'PUT', headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}`, 'content-type': 'application/gzip' }, body: 'not gzip at all',
    });
    expect(refused.status).toBe(422);

    const res = await fetch(`${hd.url}/metrics`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await res.text();
    families = await parsePrometheus(text);
  });

  afterAll(() => hd?.close());

  it('counts deployments by app, kind and status, with their durations', () => {
    expect(value(families, 'hotdeploy_deployments_total', { app: 'demo', kind: 'push', status: 'succeeded' })).toBe(2);
    expect(value(families, 'hotdeploy_deployments_total', { app: 'demo', kind: 'push', status: 'rolled-back' })).toBe(1);
    expect(value(families, 'hotdeploy_deployments_total', { app: 'demo', kind: 'rollback', status: 'succeeded' })).toBe(1);
    // Every status of every kind exists from zero, so an alert's increase() sees the first one.
    expect(value(families, 'hotdeploy_deployments_total', { app: 'demo', kind: 'activate', status: 'failed' })).toBe(0);
    expect(value(families, 'hotdeploy_deployment_duration_seconds_count', { app: 'demo', kind: 'push', status: 'succeeded' })).toBe(2);
    expect(value(families, 'hotdeploy_deployment_duration_seconds_sum', { app: 'demo', kind: 'push', status: 'succeeded' })).toBeGreaterThan(0);
    const buckets = samples(families, 'hotdeploy_deployment_duration_seconds_bucket', { app: 'demo', kind: 'push', status: 'succeeded' });
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBe(2);
  });

  it('counts worker outcomes', () => {
    const outcome = (o: string) => value(families, 'hotdeploy_worker_outcomes_total', { app: 'demo', outcome: o });
    expect(outcome('started')).toBe(2);
    expect(outcome('hot')).toBeGreaterThanOrEqual(4);
    expect(outcome('rolled-back')).toBe(2);
    expect(outcome('reloaded')).toBe(0);
    expect(outcome('unchanged')).toBe(0);
  });

  it('counts uploads, their bytes and unpack durations, and the releases stored', () => {
    expect(value(families, 'hotdeploy_uploads_total', { app: 'demo', outcome: 'created' })).toBe(3);
    expect(value(families, 'hotdeploy_uploads_total', { app: 'demo', outcome: 'rejected' })).toBe(1);
    expect(value(families, 'hotdeploy_upload_bytes_total', { app: 'demo' })).toBeGreaterThan(300);
    expect(value(families, 'hotdeploy_unpack_duration_seconds_count', { app: 'demo' })).toBe(3);
    expect(value(families, 'hotdeploy_uploads_in_flight')).toBe(0);
    expect(value(families, 'hotdeploy_uploads_queued')).toBe(0);
    expect(value(families, 'hotdeploy_releases', { app: 'demo' })).toBe(3);
  });

  it('reports the agent and each worker\'s memory, CPU, restarts and event-loop lag', () => {
    expect(value(families, 'hotdeploy_agents_connected')).toBe(1);
    expect(value(families, 'hotdeploy_agents_lagging')).toBe(0);
    const up = samples(families, 'hotdeploy_agent_up');
    expect(up.map((s) => [s.labels.transport, s.value])).toEqual([['in-process', 1]]);
    for (const worker of ['0', '1']) {
      const labels = { app: 'demo', worker };
      expect(value(families, 'hotdeploy_worker_memory_bytes', labels)).toBeGreaterThan(1024 * 1024);
      expect(value(families, 'hotdeploy_worker_cpu_percent', labels)).toBeGreaterThanOrEqual(0);
      expect(value(families, 'hotdeploy_worker_restarts_total', labels)).toBe(0);
      expect(value(families, 'hotdeploy_worker_event_loop_lag_p99_seconds', labels)).toBeGreaterThanOrEqual(0);
      expect(value(families, 'hotdeploy_worker_event_loop_lag_max_seconds', labels)).toBeLessThan(5);
    }
    // Every family has its help text and a type the parser recognised.
    for (const f of families.filter((x) => x.name.startsWith('hotdeploy_'))) {
      expect(f.help, f.name).not.toBe('');
      expect(['counter', 'gauge', 'histogram'], f.name).toContain(f.type);
    }
  });
  it.skipIf(promtool !== undefined)('passes promtool check metrics (format and naming rules)', async () => {
    const lint = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, out: stdout + stderr }));
      child.stdin?.end(text);
    });
    expect(lint).toEqual({ code: 0, out: '' });
  });
});

describe('who may scrape', () => {
  let server: TestServer;
  beforeAll(async () => { server = await testServer(); });
  afterAll(() => server.close());

  it('a token with read on every app; 401 without one, 403 for a token scoped to some apps', async () => {
    expect((await get(server.app, '/metrics', TOKENS.reader)).statusCode).toBe(200);
    const none = await server.app.inject({ method: 'GET', url: '/metrics' });
    expect([none.statusCode, none.json().code]).toEqual([401, 'DEPLOY_ERR_UNAUTHORIZED']);
    const scoped = await get(server.app, '/metrics', TOKENS.ci);
    expect([scoped.statusCode, scoped.json().code]).toEqual([403, 'DEPLOY_ERR_FORBIDDEN']);
  });
});
