import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import type { Pm2Agent } from '../../agent/pm2/agent.js';
import type { BusPacket } from '../../agent/pm2/client.js';
import { freePort, handlerApp, pidsServing, release } from '../helpers/apps.js';
import { pm2Home, waitFor } from '../helpers/pm2.js';
import { tempDir } from '../helpers/tmp.js';

// The agent keeps each app's process list between deploys (process-table.ts) instead of asking the
// daemon before every offer (issue 6). What PM2 does to the workers in between must still be seen:
// a worker PM2 restarted gets the next update, a worker an operator stopped is reported as stopped.

const APP = 'kept';
const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2');

let home: Awaited<ReturnType<typeof pm2Home>>;
let data: Awaited<ReturnType<typeof tempDir>>;
let agent: Pm2Agent;
let port: number;
let last: ActivationRequest;

const next = async (version: string, message: string): Promise<ActivationRequest> => {
  last = await release(data.dir, APP, version, handlerApp({ name: APP, version, port, message }), { version: last.version, releaseDir: last.releaseDir });
  return last;
};

/** Resolves on the bus event `event` about the app's worker `pmId` (as the agent's own client receives it). */
function busEvent(event: string, pmId: number): Promise<void> {
  return new Promise((resolve) => {
    const listener = (packet: BusPacket & { event?: string }): void => {
      if (packet.event !== event || packet.process?.name !== APP || Number(packet.process.pm_id) !== pmId) return;
      agent.client.off('event', listener);
      resolve();
    };
    agent.client.on('event', listener);
  });
}

beforeAll(async () => {
  home = await pm2Home();
  data = await tempDir('hd-data-');
  port = await freePort();
  agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000, updateTimeoutMs: 5_000 });
  last = await release(data.dir, APP, 'v1', handlerApp({ name: APP, version: 'v1', port, message: 'one' }));
  const first = await agent.activate(last);
  expect(first, first.reason).toMatchObject({ status: 'succeeded', path: 'start' });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await agent?.close();
  await home?.cleanup();
  await data?.cleanup();
});

describe('the process list kept between deploys', () => {
  it('offers a hot update without asking the daemon for the processes once it has their list', async () => {
    const second = await agent.activate(await next('v2', 'two'));
    expect(second.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    const describe = vi.spyOn(agent.client, 'describe');
    const third = await agent.activate(await next('v3', 'three'));
    expect(third.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    expect(describe).not.toHaveBeenCalled();
    describe.mockRestore();
    expect((await pidsServing(port, 2)).messages).toEqual(['three']);
  });

  it('a worker PM2 restarted between two deploys gets the next update', async () => {
    const before = await agent.client.describe(APP);
    const victim = before[0]!;
    const online = busEvent('online', victim.pmId);
    process.kill(victim.pid!, 'SIGKILL');
    await online;
    const restarted = await waitFor('the killed worker back online with a new pid', async () => {
      const proc = (await agent.client.describe(APP)).find((p) => p.pmId === victim.pmId);
      return proc?.status === 'online' && proc.pid !== victim.pid ? proc : undefined;
    });

    const result = await agent.activate(await next('v4', 'four'));
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.path).toBe('hot');
    expect(result.workers.map((w) => [w.pmId, w.pid, w.outcome])).toEqual(before.map((p) => [p.pmId, p.pmId === victim.pmId ? restarted.pid : p.pid, 'hot']));
    expect(await pidsServing(port, 2)).toEqual({ pids: [restarted.pid, before[1]!.pid].sort((a, b) => a! - b!), messages: ['four'] });
  });

  it('a worker stopped outside hotdeploy is reported as stopped, and the release lands by the reload', async () => {
    // The list is kept again (the previous deploy asked the daemon after the restart's events).
    await agent.activate(await next('v5', 'five'));
    const stoppedId = (await agent.client.describe(APP))[1]!.pmId;
    const exited = busEvent('exit', stoppedId);
    await promisify(execFile)(process.execPath, [pm2Bin, 'stop', String(stoppedId)], { env: { ...process.env, PM2_HOME: home.home } });
    await exited;

    const result = await agent.activate(await next('v6', 'six'));
    expect(result.reason).toMatch(new RegExp(`worker ${stoppedId}: worker is stopped`));
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.path).toBe('reload');
    expect((await pidsServing(port, 2)).messages).toEqual(['six']);
  });
});
