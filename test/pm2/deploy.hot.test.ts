import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ask, handlerApp, pidsServing, underLoad } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, rollback, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';

// Hot updates end to end: `startServer` with its in-process PM2 agent, real
// bundles uploaded over HTTP, a real PM2 daemon in a temp PM2_HOME, real requests to the workers.

let hd: Hotdeploy;
let port: number;
const app = (version: string, message: string): Record<string, string | object> => handlerApp({ name: 'web', version, port, message });

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
});

afterAll(async () => {
  await hd?.close();
});

describe('hot deploys under PM2', () => {
  let firstPids: number[] = [];

  it('first push starts the app under PM2 with 2 instances answering on its port', async () => {
    const { status, deployment } = await push(hd, 'web', '1.0.0', app('1.0.0', 'one'));
    expect(status).toBe(201);
    expect(deployment.status, deployment.reason).toBe('succeeded');
    expect(deployment.workers).toHaveLength(2);
    expect(deployment.workers.every((w) => w.outcome === 'started' && w.version === '1.0.0')).toBe(true);
    const serving = await pidsServing(port, 2);
    expect(serving.messages).toEqual(['one']);
    expect(serving.pids).toEqual(deployment.workers.map((w) => w.pid).sort());
    firstPids = serving.pids;

    const status1 = await appStatus(hd, 'web');
    expect(status1.current).toBe('1.0.0');
    expect(status1.workers.map((w) => [w.status, w.version, w.lastOutcome])).toEqual([['online', '1.0.0', 'started'], ['online', '1.0.0', 'started']]);
  });

  it('the workers run on the Node that runs the tests: PM2 starts its daemon, and so its workers, from it', async () => {
    const answers = await Promise.all([ask(port), ask(port)]);
    expect(answers.map((a) => a.node)).toEqual([process.version, process.version]);
  });

  it('a change accepted hot: new response, same pids, outcome hot', async () => {
    const { deployment } = await push(hd, 'web', '2.0.0', app('2.0.0', 'two'));
    expect(deployment.status, deployment.reason).toBe('succeeded');
    expect(deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    expect(deployment.workers[0]?.update?.outdated).toEqual(['message.js']);
    expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['two'] });
  });

  it('rollback brings the previous response back (hot), rollback --to a named release', async () => {
    const back = await rollback(hd, 'web');
    expect(back.status, back.reason).toBe('succeeded');
    expect(back.workers.map((w) => [w.outcome, w.version])).toEqual([['hot', '1.0.0'], ['hot', '1.0.0']]);
    expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['one'] });

    await push(hd, 'web', '3.0.0', app('3.0.0', 'three'));
    const named = await rollback(hd, 'web', '2.0.0');
    expect(named.status, named.reason).toBe('succeeded');
    expect((await ask(port)).message).toBe('two');
    expect((await appStatus(hd, 'web')).current).toBe('2.0.0');
  });

  it('serves every request of a keep-alive load loop during hot deploys', async () => {
    const load = await underLoad(port, 8, async () => {
      for (let i = 4; i <= 8; i++) {
        const { deployment } = await push(hd, 'web', `${i}.0.0`, app(`${i}.0.0`, `message ${i}`));
        expect(deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
      }
    });
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(50);
    expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['message 8'] });
  });
});
