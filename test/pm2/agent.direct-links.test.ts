import { pino } from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import type { Pm2Agent } from '../../agent/pm2/agent.js';
import { freePort, handlerApp, pidsServing, release } from '../helpers/apps.js';
import { pm2Home } from '../helpers/pm2.js';
import { tempDir } from '../helpers/tmp.js';

// Workers the agent starts connect back to it (agent/pm2/worker-links.ts): updates and their answers
// skip the hop through PM2's daemon. A worker whose link is gone is still reached through PM2.

const APP = 'linked';

let home: Awaited<ReturnType<typeof pm2Home>>;
let data: Awaited<ReturnType<typeof tempDir>>;
let agent: Pm2Agent;
let port: number;
let last: ActivationRequest;

const next = async (version: string, message: string): Promise<ActivationRequest> => {
  last = await release(data.dir, APP, version, handlerApp({ name: APP, version, port, message }), { version: last.version, releaseDir: last.releaseDir });
  return last;
};

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

it('sends hot updates over the workers\' direct links, not through the PM2 daemon', async () => {
  await agent.activate(await next('v2', 'two'));
  const throughPm2 = vi.spyOn(agent.client, 'send');
  const result = await agent.activate(await next('v3', 'three'));
  expect(result.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
  expect(throughPm2).not.toHaveBeenCalled();
  throughPm2.mockRestore();
  expect((await pidsServing(port, 2)).messages).toEqual(['three']);
});
