import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { pidsServing } from '../helpers/apps.js';
import { waitFor } from '../helpers/wait.js';
import { AgentBed } from '../helpers/started-agent.js';

// Workers the agent starts connect back to it (agent/pm2/worker-links.ts): updates and their answers
// skip the hop through PM2's daemon. A worker whose link is gone is still reached through PM2.

const APP = 'linked';

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start(APP);
});

afterAll(async () => {
  vi.restoreAllMocks();
  await bed?.close();
});

it('sends hot updates over the workers\' direct links, not through the PM2 daemon', async () => {
  await bed.agent.activate(await bed.next('v2', 'two'));
  const throughPm2 = vi.spyOn(bed.agent.client, 'send');
  const result = await bed.agent.activate(await bed.next('v3', 'three'));
  expect(result.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
  expect(throughPm2).not.toHaveBeenCalled();
  throughPm2.mockRestore();
  expect((await pidsServing(bed.port, 2)).messages).toEqual(['three']);
});

it('deploys hot through PM2 while a restarted agent offers the workers new links, then over their links again', async () => {
  // The service (and its agent) restarts; the daemon and the workers keep running.
  await bed.agent.close();
  bed.agent = bed.newAgent();
  await bed.agent.ready();
  const first = await bed.agent.activate(await bed.next('v4', 'four'));
  expect([first.path, ...first.workers.map((w) => w.outcome)]).toEqual(['hot', 'hot', 'hot']);
  expect((await pidsServing(bed.port, 2)).messages).toEqual(['four']);

  // The first deploy reached the workers through PM2, which offered each a new link: deploy until none goes through PM2.
  let n = 4;
  await waitFor('every worker back on its direct link', async () => {
    n += 1;
    const throughPm2 = vi.spyOn(bed.agent.client, 'send');
    const result = await bed.agent.activate(await bed.next(`v${n}`, `message ${n}`));
    expect(result.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    const viaPm2 = throughPm2.mock.calls.length;
    throughPm2.mockRestore();
    return viaPm2 === 0 ? true : undefined;
  });
  expect((await pidsServing(bed.port, 2)).messages).toEqual([`message ${n}`]);
});
