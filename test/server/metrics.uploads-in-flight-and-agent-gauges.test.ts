import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceMetrics } from '../../services/server/metrics.js';
import type { HostView } from '../../services/server/nats/host-views.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { parsePrometheus, prometheusParserMissing, value } from '../helpers/prometheus.js';
import { get, stagedBytes, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const missing = await prometheusParserMissing();
if (missing) console.warn(`skipping the metrics gauge tests: ${missing}`);

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe.skipIf(missing !== undefined)('metrics gauges', () => {
  it('counts an upload in flight while its body is still arriving, and not after', async () => {
    server = await testServer();
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.app.server.address() as AddressInfo;
    const scrape = async () => parsePrometheus((await get(server!.app, '/metrics', TOKENS.reader)).body);
    const bundle = await makeBundle(appFiles('demo@1.0.0'));
    let answered: (status: number) => void = () => undefined;
    const answer = new Promise<number>((resolve) => { answered = resolve; });
    const req = http.request({
      host: '127.0.0.1', port, method: 'PUT', path: '/v1/apps/demo/releases/1.0.0',
      headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip', 'content-length': bundle.length },
    }, (res) => { res.resume(); answered(res.statusCode ?? 0); });
    req.write(bundle.subarray(0, 100));
    await waitFor('the first bytes in the staging area', async () => (await stagedBytes(server!.dataDir)) > 0, 10_000);
    const during = await scrape();
    expect(value(during, 'hotdeploy_uploads_in_flight')).toBe(1);
    expect(value(during, 'hotdeploy_uploads_queued')).toBe(0);
    req.end(bundle.subarray(100));
    expect(await answer).toBe(201);
    const after = await scrape();
    expect(value(after, 'hotdeploy_uploads_in_flight')).toBe(0);
    expect(value(after, 'hotdeploy_uploads_total', { app: 'demo', outcome: 'created' })).toBe(1);
    expect(value(after, 'hotdeploy_upload_bytes_total', { app: 'demo' })).toBe(bundle.length);
    expect(value(after, 'hotdeploy_releases', { app: 'demo' })).toBe(1);
  });

  it('maps hosts over NATS to the agent gauges, and worker stats to seconds', async () => {
    const heartbeat = new Date(Date.now() - 30_000).toISOString();
    const hosts: HostView[] = [
      { host: 'web-1', transport: 'nats', lastHeartbeat: heartbeat, alive: true, lagging: true, apps: { demo: { version: '1.0.0', workers: 2, desired: '2.0.0', lagging: true } } },
      { host: 'web-2', transport: 'nats', lastHeartbeat: heartbeat, alive: false, lagging: false, apps: {} },
    ];
    const metrics = new ServiceMetrics({
      apps: async () => ['demo'],
      releases: async () => 2,
      hosts: async () => hosts,
      workers: async () => [{ host: 'web-1', pmId: 3, pid: 42, version: '1.0.0', status: 'online', stats: { restarts: 4, memoryBytes: 5e7, cpuPercent: 12, loopDelayP99Ms: 7.5, loopDelayMaxMs: 250 } }],
    });
    const families = await parsePrometheus(await metrics.text());
    expect(value(families, 'hotdeploy_agents_connected')).toBe(1);
    expect(value(families, 'hotdeploy_agents_lagging')).toBe(1);
    expect(value(families, 'hotdeploy_agent_up', { host: 'web-2', transport: 'nats' })).toBe(0);
    expect(value(families, 'hotdeploy_agent_lagging', { host: 'web-1' })).toBe(1);
    expect(value(families, 'hotdeploy_agent_heartbeat_age_seconds', { host: 'web-1' })).toBeGreaterThanOrEqual(30);
    const worker = { app: 'demo', host: 'web-1', worker: '3' };
    expect(value(families, 'hotdeploy_worker_restarts_total', worker)).toBe(4);
    expect(value(families, 'hotdeploy_worker_memory_bytes', worker)).toBe(5e7);
    expect(value(families, 'hotdeploy_worker_cpu_percent', worker)).toBe(12);
    expect(value(families, 'hotdeploy_worker_event_loop_lag_p99_seconds', worker)).toBe(0.0075);
    expect(value(families, 'hotdeploy_worker_event_loop_lag_max_seconds', worker)).toBe(0.25);
    // A host that went away leaves no series behind at the next scrape.
    hosts.pop();
    expect((await parsePrometheus(await metrics.text())).flatMap((f) => f.samples).some((s) => s.labels.host === 'web-2')).toBe(false);
  });
});
