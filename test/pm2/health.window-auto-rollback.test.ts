import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlerApp, pidsServing } from '../helpers/apps.js';
import { HOTDEPLOY_TOKEN, deployment, push, startHotdeploy, type DeploymentBody, type Hotdeploy } from '../helpers/hotdeploy.js';
import { FLAKY_ENTRY, itemLoop } from '../helpers/flaky-app.js';
import { freePort } from '../helpers/ports.js';
import { openEvents, type SseStream } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';

// The health window end to end: a hot swap whose release fails only some requests passes the probe,
// then trips the workers' window under a real request loop; the service swaps the app back hot,
// marks the release bad and records an `auto-rollback` deployment linked to the push.

const APP = 'windowed';
let hd: Hotdeploy;
let port: number;
let events: SseStream<{ type: string; deploymentId: string; kind: string; status: string; health?: { version: string; report: { tripped: boolean } }; deployment?: AutoRollback }>;

interface AutoRollback extends DeploymentBody {
  kind: string;
  version: string;
  from: string | null;
  cause?: { version: string; deploymentId: string | null; reason: string; windows: { pmId: number; report: { requests: number; errors5xx: number; exceptions: number; tripped: boolean } }[] };
}

/** `health` settings with a window long enough for the loop, and the figures of the documented threshold. */
function release(version: string, message: string, indexJs?: string): Record<string, string | object> {
  const files = handlerApp({ name: APP, version, port, message, ...(indexJs ? { indexJs } : {}) });
  const pkg = files['package.json'] as { hotdeploy: Record<string, unknown> };
  return { ...files, 'package.json': { ...pkg, hotdeploy: { ...pkg.hotdeploy, health: { windowMs: 60_000, threshold: 5, errorRate: 0.1 } } } };
}

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  events = await openEvents(Number(new URL(hd.url).port), HOTDEPLOY_TOKEN, { query: `?app=${APP}` });
});

afterAll(async () => {
  events?.close();
  await hd?.close();
});

describe('the health window after a hot swap', () => {
  it('swaps the app back hot when some requests fail under load; the release is marked bad; an auto-rollback records the figures', async () => {
    const first = await push(hd, APP, '1.0.0', release('1.0.0', 'one'));
    expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
    const before = await pidsServing(port, 2);

    const load = itemLoop(port, 4);
    let statuses: Map<number, number>;
    let pushed: DeploymentBody;
    try {
      pushed = (await push(hd, APP, '1.1.0', release('1.1.0', 'two', FLAKY_ENTRY))).deployment;
      expect(pushed.status, pushed.reason).toBe('succeeded');
      expect(pushed.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
      const finished = await waitFor('the auto-rollback to finish', () =>
        events.frames.find((f) => f.data.type === 'finished' && f.data.kind === 'auto-rollback')?.data.deployment, 30_000);
      expect(finished.status, finished.reason).toBe('succeeded');
    } finally {
      statuses = await load.stop();
    }
    expect(statuses.get(500) ?? 0).toBeGreaterThanOrEqual(5);

    const tripped = events.frames.find((f) => f.data.type === 'health-window');
    expect(tripped?.data.health).toMatchObject({ version: '1.1.0', report: { tripped: true } });
    const auto = (await deployment(hd, tripped!.data.deploymentId)) as AutoRollback;
    expect(auto).toMatchObject({ kind: 'auto-rollback', version: '1.0.0', from: '1.1.0', status: 'succeeded' });
    expect(auto.workers.map((w) => [w.outcome, w.version])).toEqual([['hot', '1.0.0'], ['hot', '1.0.0']]);
    expect(auto.cause).toMatchObject({ version: '1.1.0', deploymentId: pushed.id });
    expect(auto.cause!.reason).toMatch(/health window tripped on .+ worker \d+ after the hot swap to 1\.1\.0: \d+ 5xx answer\(s\) and 0 uncaught exception\(s\) in \d+ answer\(s\) within \d+ ms \(first: GET \/items\/\d+ answered 500\)/);
    const figures = auto.cause!.windows[0]!.report;
    expect(figures.tripped).toBe(true);
    expect(figures.errors5xx).toBeGreaterThanOrEqual(5);
    expect(figures.errors5xx).toBeGreaterThanOrEqual(0.1 * figures.requests);

    // One rollback for the release, however many workers tripped (later trips join its figures).
    const recent = await fetch(`${hd.url}/v1/deployments?app=${APP}`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } })
      .then((r) => r.json()) as { deployments: { kind: string }[] };
    expect(recent.deployments.filter((d) => d.kind === 'auto-rollback')).toHaveLength(1);
    expect(auto.cause!.windows.length).toBeGreaterThanOrEqual(1);

    // The push's own record ended at the gate and stays as it was.
    expect(await deployment(hd, pushed.id)).toMatchObject({ status: 'succeeded', workers: pushed.workers });
    // Swapped back hot: the same processes serve the first release.
    expect(await pidsServing(port, 2)).toEqual(before);

    const history = await fetch(`${hd.url}/v1/apps/${APP}/releases`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } })
      .then((r) => r.json()) as { current: string; releases: { version: string; bad: boolean; badReason?: string }[] };
    expect(history.current).toBe('1.0.0');
    const bad = history.releases.find((r) => r.version === '1.1.0');
    expect(bad?.bad).toBe(true);
    expect(bad?.badReason).toMatch(new RegExp(`^health window tripped .*\\(auto-rollback ${auto.id}\\)$`));
  });
});
