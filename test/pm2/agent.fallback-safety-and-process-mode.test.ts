import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import type { Pm2Agent } from '../../agent/pm2/agent.js';
import { handlerApp, pidsServing, release } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
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
  agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 1_000, listenTimeoutMs: 8_000, killTimeoutMs: 4_000, updateTimeoutMs: 2_000 });
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
    // Dies only under PM2 (which names its processes by pm_id), 400 ms after it loaded: the trial
    // start (a plain fork) passes however slowly it boots, and the crash loop shows after the reload.
    const dying = handlerApp({ name: APP, version: 'v2', port, message: 'two',
      indexJs: `if (process.env.pm_id !== undefined) setTimeout(() => process.exit(3), 400);\nmodule.exports = (req, res) => res.end('{"message":"two","pid":0}');\n` });
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

describe('a worker that does not answer', () => {
  it('is killed and replaced, and counts as a fallback reason: the release is trial-started and reloaded', async () => {
    const quietPort = await freePort();
    // Instance 0's dispose handler blocks its event loop past the agent's 2 s answer deadline.
    const busy = `module.hot.dispose(() => { if (process.env.NODE_APP_INSTANCE === '0') { const end = Date.now() + 3000; while (Date.now() < end); } });\n`;
    const v1 = await release(data.dir, 'quiet', 'v1', handlerApp({ name: 'quiet', version: 'v1', port: quietPort, messageJs: `${busy}module.exports = 'one';\n` }));
    expect((await agent.activate(v1)).status).toBe('succeeded');
    const result = await agent.activate(await release(data.dir, 'quiet', 'v2', handlerApp({ name: 'quiet', version: 'v2', port: quietPort, message: 'two' }), previousOf(v1)));
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.path).toBe('reload');
    expect(result.reason).toMatch(/worker \d+ \(pid \d+\): did not finish the update to v2 within 2000 ms.*killed and restarted on v1/);
    expect(result.workers.map((w) => [w.outcome, w.version])).toEqual([['reloaded', 'v2'], ['reloaded', 'v2']]);
    expect((await pidsServing(quietPort, 2)).messages).toEqual(['two']);
  });
});

describe('process-mode apps and process settings', () => {
  const processApp = (version: string, message: string, extra: Record<string, unknown> = {}): Record<string, string | object> => ({
    'package.json': { name: 'proc', version, main: 'server.js', hotdeploy: { mode: 'process', port: procPort, ...extra } },
    // An ordinary program that listens itself: the bootstrap only hosts its entry.
    'server.js': `
const http = require('node:http');
const message = require('./message.js');
http.createServer((req, res) => res.end(JSON.stringify({ message, pid: process.pid, mode: process.env.MODE }))).listen(Number(process.env.PORT));
`,
    'message.js': `module.exports = ${JSON.stringify(message)};\n`,
  });
  let procPort: number;
  let v1: ActivationRequest;

  it('runs a process-mode app under the bootstrap; a change nobody accepts is reloaded', async () => {
    procPort = await freePort();
    v1 = await release(data.dir, 'proc', 'v1', processApp('v1', 'one'));
    const first = await agent.activate(v1);
    expect(first.status, first.reason).toBe('succeeded');
    const before = await pidsServing(procPort, 2);
    expect(before.messages).toEqual(['one']);

    const second = await agent.activate(await release(data.dir, 'proc', 'v2', processApp('v2', 'two'), previousOf(v1)));
    expect(second.status, second.reason).toBe('succeeded');
    expect(second.path).toBe('reload');
    expect(second.reason).toMatch(/unaccepted/);
    const after = await pidsServing(procPort, 2);
    expect(after.messages).toEqual(['two']);
    expect(after.pids.filter((pid) => before.pids.includes(pid))).toEqual([]);
  });

  it('reloads and scales when a release changes its env or instance count', async () => {
    const v3 = await release(data.dir, 'proc', 'v3', processApp('v3', 'two', { instances: 3, env: { MODE: 'three' } }));
    const result = await agent.activate(v3);
    expect(result.status, result.reason).toBe('succeeded');
    expect(result.reason).toMatch(/env or port changed.*2 instance\(s\) running, 3 wanted/);
    expect(result.workers).toHaveLength(3);
    const serving = await pidsServing(procPort, 3);
    expect(serving.pids).toHaveLength(3);
    expect((await fetch(`http://127.0.0.1:${procPort}/`).then((r) => r.json()) as { mode: string }).mode).toBe('three');
  });
});
