import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BusPacket, Pm2Process } from '../../agent/pm2/client.js';
import { pidsServing } from '../helpers/apps.js';
import { waitFor } from '../helpers/wait.js';
import { AgentBed } from '../helpers/started-agent.js';

// The agent keeps each app's process list between deploys (process-table.ts) instead of asking the
// daemon before every offer. What PM2 does to the workers in between must still be seen:
// a worker PM2 restarted gets the next update, a worker an operator stopped is reported as stopped.

const APP = 'kept';
const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2');

let bed: AgentBed;

/** Resolves on the bus event `event` about the app's worker `pmId` (as the agent's own client receives it). */
function busEvent(event: string, pmId: number): Promise<void> {
  return new Promise((resolve) => {
    const listener = (packet: BusPacket & { event?: string }): void => {
      if (packet.event !== event || packet.process?.name !== `hd-${APP}` || Number(packet.process.pm_id) !== pmId) return;
      bed.agent.client.off('event', listener);
      resolve();
    };
    bed.agent.client.on('event', listener);
  });
}

/** The app's processes as the daemon lists them (PM2 name `hd-<app>`). */
async function ownProcesses(): Promise<Pm2Process[]> {
  return (await bed.agent.client.list()).filter((p) => p.name === `hd-${APP}`);
}

beforeAll(async () => {
  bed = await AgentBed.start(APP);
});

afterAll(async () => {
  vi.restoreAllMocks();
  await bed?.close();
});

describe('the process list kept between deploys', () => {
  it('offers a hot update without asking the daemon for the processes once it has their list', async () => {
    const second = await bed.agent.activate(await bed.next('v2', 'two'));
    expect(second.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    const describe = vi.spyOn(bed.agent.client, 'list');
    const third = await bed.agent.activate(await bed.next('v3', 'three'));
    expect(third.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    expect(describe).not.toHaveBeenCalled();
    describe.mockRestore();
    expect((await pidsServing(bed.port, 2)).messages).toEqual(['three']);
  });

  it('a worker PM2 restarted between two deploys gets the next update', async () => {
    const before = await ownProcesses();
    const victim = before[0]!;
    const online = busEvent('online', victim.pmId);
    process.kill(victim.pid!, 'SIGKILL');
    await online;
    const restarted = await waitFor('the killed worker back online with a new pid', async () => {
      const proc = (await ownProcesses()).find((p) => p.pmId === victim.pmId);
      return proc?.status === 'online' && proc.pid !== victim.pid ? proc : undefined;
    });

    const result = await bed.agent.activate(await bed.next('v4', 'four'));
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.path).toBe('hot');
    expect(result.workers.map((w) => [w.pmId, w.pid, w.outcome])).toEqual(before.map((p) => [p.pmId, p.pmId === victim.pmId ? restarted.pid : p.pid, 'hot']));
    expect(await pidsServing(bed.port, 2)).toEqual({ pids: [restarted.pid, before[1]!.pid].sort((a, b) => a! - b!), messages: ['four'] });
  });

  it('a worker stopped outside hotdeploy is reported as stopped, and the release lands by the reload', async () => {
    // The list is kept again (the previous deploy asked the daemon after the restart's events).
    await bed.agent.activate(await bed.next('v5', 'five'));
    const stoppedId = (await ownProcesses())[1]!.pmId;
    const exited = busEvent('exit', stoppedId);
    await promisify(execFile)(process.execPath, [pm2Bin, 'stop', String(stoppedId)], { env: { ...process.env, PM2_HOME: bed.home.home } });
    await exited;

    const result = await bed.agent.activate(await bed.next('v6', 'six'));
    expect(result.reason).toMatch(new RegExp(`worker ${stoppedId}: worker is stopped`));
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.path).toBe('reload');
    expect((await pidsServing(bed.port, 2)).messages).toEqual(['six']);
  });
});
