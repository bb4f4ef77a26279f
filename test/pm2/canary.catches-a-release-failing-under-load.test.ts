import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentPhase, WorkerState } from '../../agent/messages.js';
import { appStatus, deployment, HOTDEPLOY_TOKEN, push as pushFiles, startHotdeploy } from '../helpers/hotdeploy.js';
import type { DeploymentBody, Hotdeploy } from '../helpers/hotdeploy.js';
import { makeBundle } from '../helpers/bundles.js';
import { crowdEntry, requestLoop, type Answered } from '../helpers/crowded-app.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { Client } from '../../services/cli/client.js';
import { push } from '../../services/cli/commands/push.js';
import { ExitCode } from '../../services/cli/errors.js';
import { captureIo } from '../cli/helpers.js';

// `push --canary` end to end: the deploy service with its in-process PM2 agent, a real PM2 daemon,
// three workers, and a keep-alive request loop on the app's port while the canary runs.

let hd: Hotdeploy;
let port: number;
let work: { dir: string; cleanup(): Promise<void> };

/** The app under test: three workers, the probe on `/health`; `crowdFails`: `/` fails only under load (crowded-app.ts). */
function loadApp(version: string, message: string, crowdFails = false): Record<string, string | object> {
  return {
    'package.json': { name: 'canaried', version, main: 'index.js', hotdeploy: { port, instances: 3, health: { path: '/health' } } },
    'message.js': `module.exports = ${JSON.stringify(message)};\n`,
    'index.js': crowdEntry(crowdFails),
  };
}

const loop = <T>(connections: number, during: (answers: readonly Answered[]) => Promise<T>): ReturnType<typeof requestLoop<T>> => requestLoop([port], connections, during);

async function pushCanary(version: string, files: Record<string, string | object>, query: string): Promise<{ status: number; body: { code?: string; deployment?: DeploymentBody & { phases?: DeploymentPhase[] } } }> {
  const res = await fetch(`${hd.url}/v1/apps/canaried/releases/${version}${query}`, {
    method: 'PUT', headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}`, 'content-type': 'application/gzip' }, body: await makeBundle(files),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; deployment?: DeploymentBody & { phases?: DeploymentPhase[] } } };
}

const phaseOf = (d: DeploymentBody & { phases?: DeploymentPhase[] }, name: DeploymentPhase['name']): DeploymentPhase | undefined => d.phases?.find((p) => p.name === name);

const byPmId = (workers: WorkerState[]): Array<[number, number | null, string | null]> =>
  [...workers].sort((a, b) => a.pmId - b.pmId).map((w) => [w.pmId, w.pid, w.version]);

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  work = await tempDir('hd-canary-cli-');
  const { deployment: first } = await pushFiles(hd, 'canaried', '1.0.0', loadApp('1.0.0', 'one'));
  expect(first.status, first.reason).toBe('succeeded');
});

afterAll(async () => {
  await hd?.close();
  await work?.cleanup();
});

describe('push --canary', () => {
  it('refuses a bad canary with DEPLOY_ERR_CANARY before reading the bundle; the old release serves', async () => {
    const before = byPmId((await appStatus(hd, 'canaried')).workers);
    for (const query of ['?canary=abc', '?canary=101%25', '?canary=-1', '?canary=1&canaryWatchMs=5', '?canary=1&activate=false']) {
      const res = await pushCanary('9.0.0', loadApp('9.0.0', 'nine'), query);
      expect([res.status, res.body.code], query).toEqual([400, 'DEPLOY_ERR_CANARY']);
    }
    const status = await appStatus(hd, 'canaried');
    expect(status.current).toBe('1.0.0');
    expect(byPmId(status.workers)).toEqual(before);
    const releases = await fetch(`${hd.url}/v1/apps/canaried/releases`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } });
    expect(((await releases.json()) as { releases: { version: string }[] }).releases.map((r) => r.version)).toEqual(['1.0.0']);
  });

  it('catches a release that fails only under load: the canary swaps back, the other workers never change, no failure outside the canary', async () => {
    const before = byPmId((await appStatus(hd, 'canaried')).workers);
    expect(before.map(([, , version]) => version)).toEqual(['1.0.0', '1.0.0', '1.0.0']);
    // The canary's window can trip within a few hundred ms: the loop goes on until the workers outside
    // the canary (the lowest pm_id is the canary) have answered enough for the checks below to mean something.
    const { value: res, answers, errors } = await loop(9, async (seen) => {
      const pushed = await pushCanary('2.0.0', loadApp('2.0.0', 'two', true), '?canary=1&canaryWatchMs=4000');
      await waitFor('answers from outside the canary', () => seen.filter((a) => a.pid !== before[0]![1]).length > 50);
      return pushed;
    });
    const d = res.body.deployment!;
    expect(d.status, d.reason).toBe('rolled-back');
    expect(d.reason).toMatch(/the canary failed its watch: worker \d+'s health window tripped/);
    expect(d.phases!.map((p) => [p.name, p.status])).toEqual([['canary', 'passed'], ['watch', 'failed'], ['swap-back', 'passed']]);
    const [canaryPmId] = d.phases![0]!.workers!;
    expect(d.phases![0]!.workers).toEqual([before[0]![0]]);
    const canaryPid = before.find(([pmId]) => pmId === canaryPmId)![1];

    // The app's current never moved, and every worker is the same process on the old release.
    const after = await appStatus(hd, 'canaried');
    expect(after.current).toBe('1.0.0');
    expect(byPmId(after.workers)).toEqual(before);

    // The canary served the bad release (its 500s are what tripped it); nothing else failed.
    expect(errors).toEqual([]);
    const outside = answers.filter((a) => a.pid !== canaryPid);
    expect(outside.length).toBeGreaterThan(50);
    expect(outside.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(outside.map((a) => a.message))).toEqual(new Set(['one']));
    expect(answers.some((a) => a.pid === canaryPid && a.status === 500 && a.message === 'two')).toBe(true);
    expect(d.workers.filter((w) => w.pmId !== canaryPmId).map((w) => w.outcome)).toEqual(['unchanged', 'unchanged']);

    // The canary judged its own window: the release is marked bad, and no auto-rollback ran beside it.
    const listed = await fetch(`${hd.url}/v1/deployments?app=canaried`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } });
    const kinds = ((await listed.json()) as { deployments: { kind: string }[] }).deployments.map((x) => x.kind);
    expect(kinds).not.toContain('auto-rollback');
    const releases = await fetch(`${hd.url}/v1/apps/canaried/releases`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } });
    const bad = ((await releases.json()) as { releases: { version: string; bad: boolean; badReason?: string }[] }).releases.find((r) => r.version === '2.0.0');
    expect(bad).toMatchObject({ bad: true, badReason: expect.stringContaining('health window tripped') });
  });

  it('a canary that passes its watch goes to the rest; current moves only then, every answer succeeds (CLI push --canary)', async () => {
    const before = byPmId((await appStatus(hd, 'canaried')).workers);
    const file = path.join(work.dir, 'canaried-3.0.0.tgz');
    await writeFile(file, await makeBundle(loadApp('3.0.0', 'three')));
    const { io, out } = captureIo();
    const { value: code, answers, errors } = await loop(6, () =>
      push(new Client(hd.url, HOTDEPLOY_TOKEN), { source: file, app: 'canaried', version: '3.0.0', canary: '34%', canaryWatch: '1.5s' }, io));
    expect(code, out()).toBe(ExitCode.ok);
    expect(out()).toMatch(/canary 34%, watched 1500 ms\n/);
    expect(out()).toMatch(/│ watch +│ passed +│ [^│]+#0,1 +│ \d+ +│ \d+ probes, 0\/\d+ errors/);
    const id = /deployment (\S+) canaried@3\.0\.0: succeeded/.exec(out())?.[1];
    const d = await deployment(hd, id!) as DeploymentBody & { phases: DeploymentPhase[] };
    expect(d.phases.map((p) => [p.name, p.status, p.workers?.length])).toEqual([['canary', 'passed', 2], ['watch', 'passed', 2], ['rest', 'passed', 1]]);
    expect(d.phases[1]!.watch!.probes).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const after = await appStatus(hd, 'canaried');
    expect(after.current).toBe('3.0.0');
    expect(byPmId(after.workers)).toEqual(before.map(([pmId, pid]) => [pmId, pid, '3.0.0']));
  });

  it('a worker PM2 restarts during the watch comes back on the current release; the rest then takes the new one', async () => {
    const before = byPmId((await appStatus(hd, 'canaried')).workers);
    const queued = await pushCanary('4.0.0', loadApp('4.0.0', 'four'), '?canary=1&canaryWatchMs=4000&wait=false');
    expect(queued.status).toBe(202);
    const id = queued.body.deployment!.id;
    await waitFor('the canary watch to run', async () => phaseOf(await deployment(hd, id), 'watch')?.status === 'running', 20_000);
    // Worker 2 is outside the canary: killed, PM2 starts it again from the agent's pointer.
    const [restPmId, restPid] = before[2]!;
    process.kill(restPid!, 'SIGKILL');
    const back = await waitFor('worker 2 to be back', async () => {
      const w = (await appStatus(hd, 'canaried')).workers.find((x) => x.pmId === restPmId);
      return w && w.pid !== restPid && w.status === 'online' && w.version !== null ? w : undefined;
    }, 20_000);
    expect(back.version).toBe('3.0.0');
    expect((await deployment(hd, id)).status).toBe('running');
    expect((await appStatus(hd, 'canaried')).current).toBe('3.0.0');

    const done = await waitFor('the canary deployment to end', async () => { const d = await deployment(hd, id); return d.status !== 'running' && d; }, 30_000);
    expect(done.status, done.reason).toBe('succeeded');
    const after = await appStatus(hd, 'canaried');
    expect(after.current).toBe('4.0.0');
    expect(byPmId(after.workers)).toEqual([[before[0]![0], before[0]![1], '4.0.0'], [before[1]![0], before[1]![1], '4.0.0'], [restPmId, back.pid, '4.0.0']]);
  });

  it('a canary worker that crashes during the watch fails the canary; it came back on the current release and nothing else changed', async () => {
    const before = byPmId((await appStatus(hd, 'canaried')).workers);
    const queued = await pushCanary('5.0.0', loadApp('5.0.0', 'five'), '?canary=1&canaryWatchMs=8000&wait=false');
    const id = queued.body.deployment!.id;
    await waitFor('the canary watch to run', async () => phaseOf(await deployment(hd, id), 'watch')?.status === 'running', 20_000);
    const [canaryPmId, canaryPid] = before[0]!;
    process.kill(canaryPid!, 'SIGKILL');
    const done = await waitFor('the canary deployment to end', async () => { const d = await deployment(hd, id); return d.status !== 'running' && d; }, 30_000);
    expect(done.status, done.reason).toBe('rolled-back');
    // The watch sees the kill either through the process table (a restart) or through the probe
    // that was asking the worker when it died (its link closed), whichever comes first.
    const crashed = `^worker ${canaryPmId} (restarted during the watch|did not answer the health probe: the worker closed its link)`;
    expect(phaseOf(done, 'watch')).toMatchObject({ status: 'failed', reason: expect.stringMatching(new RegExp(crashed)) });
    const after = await waitFor('every worker to answer', async () => {
      const workers = byPmId((await appStatus(hd, 'canaried')).workers);
      return workers.every(([, , version]) => version !== null) && workers;
    }, 20_000);
    expect(after.slice(1)).toEqual(before.slice(1));
    expect(after[0]![1]).not.toBe(canaryPid);
    expect(after[0]![2]).toBe('4.0.0');
    expect((await appStatus(hd, 'canaried')).current).toBe('4.0.0');
  });

  it('a canary whose workers have nothing to swap (unchanged: no loaded module changed) passes on its probes and processes', async () => {
    const files = { ...loadApp('6.0.0', 'four'), 'unused.js': 'module.exports = 6;\n' };
    const res = await pushCanary('6.0.0', files, '?canary=1&canaryWatchMs=1000');
    const d = res.body.deployment!;
    expect(d.status, d.reason).toBe('succeeded');
    expect(d.workers.map((w) => w.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(phaseOf(d, 'watch')).toMatchObject({ status: 'passed', watch: { requests: 0 } });
    expect((await appStatus(hd, 'canaried')).current).toBe('6.0.0');
  });
});
