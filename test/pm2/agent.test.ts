import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import type { Pm2Agent } from '../../agent/pm2/agent.js';
import { freePort, handlerApp, pidsServing, release } from '../helpers/apps.js';
import { pm2Home } from '../helpers/pm2.js';
import { tempDir } from '../helpers/tmp.js';

// The agent driven directly (no service): the paths the end-to-end tests do not reach, i.e. a
// release that boots in the trial but dies after the reload (the health gate brings the previous
// one back), and hot-swapped workers swapped back when the trial fails.

let home: Awaited<ReturnType<typeof pm2Home>>;
let data: Awaited<ReturnType<typeof tempDir>>;
let agent: Pm2Agent;
let port: number;
let current: ActivationRequest;

const APP = 'gate';

beforeAll(async () => {
  home = await pm2Home();
  data = await tempDir('hd-data-');
  port = await freePort();
  agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 1_000, listenTimeoutMs: 5_000, killTimeoutMs: 2_000 });
  // message.js declines its updates: every change to it takes the fallback.
  current = await release(data.dir, APP, 'v1', handlerApp({ name: APP, version: 'v1', port, messageJs: `module.hot.decline();\nmodule.exports = 'one';\n` }));
  const first = await agent.activate(current);
  expect(first, first.reason).toMatchObject({ status: 'succeeded', path: 'start' });
});

afterAll(async () => {
  await agent?.close();
  await home?.cleanup();
  await data?.cleanup();
});

function previousOf(request: ActivationRequest): { version: string; releaseDir: string } {
  return { version: request.version, releaseDir: request.releaseDir };
}

describe('PM2 agent fallback safety', () => {
  it('rolls back when the release boots but its workers die after the reload (health gate)', async () => {
    const before = await pidsServing(port, 2);
    // Ready first, then dies: the trial passes, the crash loop only shows under PM2.
    const dying = handlerApp({ name: APP, version: 'v2', port, message: 'two',
      indexJs: `setTimeout(() => process.exit(3), 400);\nmodule.exports = (req, res) => res.end('{"message":"two","pid":0}');\n` });
    const result = await agent.activate(await release(data.dir, APP, 'v2', dying, previousOf(current)));
    expect(result.status, result.reason).toBe('rolled-back');
    expect(result.reason).toMatch(/did not come up after the reload/);
    expect(result.workers.every((w) => w.outcome === 'rolled-back' && w.version === 'v1')).toBe(true);
    const after = await pidsServing(port, 2);
    expect(after.messages).toEqual(['one']);
    expect(after.pids).not.toEqual(before.pids);
  });

  it('swaps hot-swapped workers back when the fallback trial cannot boot the release', async () => {
    const swapPort = await freePort();
    // Instance 0 declines every change of message.js, instance 1 accepts it: a mixed answer.
    const declineInFirst = `if (process.env.NODE_APP_INSTANCE === '0') module.hot.decline();\n`;
    const v1 = await release(data.dir, 'swap', 'v1', handlerApp({ name: 'swap', version: 'v1', port: swapPort, messageJs: `${declineInFirst}module.exports = 'one';\n` }));
    expect((await agent.activate(v1)).status).toBe('succeeded');
    const before = await pidsServing(swapPort, 2);
    // The new message.js evaluates when swapped in (hot.data is set) but throws in a fresh process.
    const v2 = await release(data.dir, 'swap', 'v2', handlerApp({ name: 'swap', version: 'v2', port: swapPort,
      messageJs: `if (module.hot.data === undefined) throw new Error('boom at boot');\nmodule.exports = 'two';\n` }), previousOf(v1));
    const result = await agent.activate(v2);
    expect(result.status, result.reason).toBe('rolled-back');
    expect(result.reason).toMatch(/trial run.*boom at boot/);
    expect(result.reason).toMatch(/declined/);
    expect(result.workers.map((w) => w.version)).toEqual(['v1', 'v1']);
    expect(await pidsServing(swapPort, 2)).toEqual({ pids: before.pids, messages: ['one'] });
  });
});
