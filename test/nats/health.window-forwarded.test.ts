import { pino } from 'pino';
import { afterEach, expect } from 'vitest';
import { createPm2Agent, type Pm2Agent } from '../../agent/pm2/agent.js';
import { pidsServing } from '../helpers/apps.js';
import { FLAKY_ENTRY, itemLoop } from '../helpers/flaky-app.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { get } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { clusterApp, push } from './fixtures.js';

// A host behind NATS forwards its workers' health-window reports to the service, which swaps the
// app back on every host: a real PM2 agent, a real nats-server, a real request loop.

let bed: ClusterBed | undefined;
let host: TestHost | undefined;
let agent: Pm2Agent | undefined;
let home: Awaited<ReturnType<typeof pm2Home>> | undefined;

useNatsServer();

afterEach(async () => {
  await host?.stop();
  await agent?.close();
  await home?.cleanup();
  await bed?.close();
});

itWithNats('a tripped window on a NATS host rolls the app back to the previous release and marks the release bad', async () => {
  bed = await clusterBed(testNames());
  home = await pm2Home();
  agent = createPm2Agent({ dataDir: bed.hostDir('a'), host: 'a', pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000 });
  host = await startHost(bed.names, agent, bed.hostDir('a'));
  const port = await freePort();
  const app = (version: string, indexJs?: string): Record<string, string | object> => {
    const files = clusterApp(version, { port });
    const pkg = files['package.json'] as { hotdeploy: Record<string, unknown> };
    return { ...files, ...(indexJs ? { 'index.js': indexJs } : {}), 'package.json': { ...pkg, hotdeploy: { ...pkg.hotdeploy, instances: 2, health: { windowMs: 60_000 } } } };
  };
  const first = await push(bed.app, '1.0.0', app('1.0.0'));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
  const before = await pidsServing(port, 2);

  const load = itemLoop(port, 4);
  let statuses: Map<number, number>;
  try {
    const flaky = await push(bed.app, '1.1.0', app('1.1.0', FLAKY_ENTRY));
    expect(flaky.deployment.status, flaky.deployment.reason).toBe('succeeded');
    expect(flaky.deployment.hosts.map((h: { path: string }) => h.path)).toEqual(['hot']);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted field by field
    const auto = await waitFor('the auto-rollback to finish', async (): Promise<any> => {
      const list = (await get(bed!.app, '/v1/deployments?app=demo')).json() as { deployments: { kind: string; finishedAt: string | null }[] };
      return list.deployments.find((d) => d.kind === 'auto-rollback' && d.finishedAt !== null);
    }, 30_000);
    expect(auto, auto.reason).toMatchObject({ status: 'succeeded', version: '1.0.0', cause: { version: '1.1.0', deploymentId: flaky.deployment.id } });
    expect(auto.cause.windows[0]).toMatchObject({ host: 'a', report: { tripped: true } });
    expect(auto.hosts).toEqual([{ host: 'a', status: 'succeeded', path: 'hot' }]);
  } finally {
    statuses = await load.stop();
  }
  expect(statuses.get(500) ?? 0).toBeGreaterThanOrEqual(5);
  expect(await pidsServing(port, 2)).toEqual(before);
  const releases = (await get(bed.app, '/v1/apps/demo/releases')).json() as { current: string; releases: { version: string; bad: boolean; badReason?: string }[] };
  expect(releases.current).toBe('1.0.0');
  expect(releases.releases.find((r) => r.version === '1.1.0')).toMatchObject({ bad: true, badReason: expect.stringMatching(/^health window tripped on a worker \d+/) });
}, 90_000);
