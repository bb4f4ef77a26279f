import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent, type Pm2Agent } from '../../agent/pm2/agent.js';
import { ask, release, type Answer } from '../helpers/apps.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

// The memory figure inside a real PM2 worker (bootstrap, runtime, agent link): 200 hot updates of
// a module of ~90 KB of source. On Node 22 and 24, V8's compilation cache kept every version's
// source (+20 MB here) until the runtime loaded app modules with it off.

const UPDATES = 200;
const MB = 1024 * 1024;

/** The app's entry forces full collections before answering with its heap (gc exposed at run time). */
function app(version: number, port: number): Record<string, string | object> {
  const functions = Array.from({ length: 400 }, (_, n) => `function f${n}(x) { return x * ${n} + '-${'k'.repeat(200)}'; }`).join('\n');
  return {
    'package.json': { name: 'mem', version: '1.0.0', main: 'index.js', hotdeploy: { port, instances: 1 } },
    'index.js': `require('v8').setFlagsFromString('--expose-gc');
const gc = require('vm').runInNewContext('gc');
let big = require('./big');
module.hot.accept('./big', () => { big = require('./big'); });
module.exports = (req, res) => {
  for (let i = 0; i < 3; i++) gc();
  res.end(JSON.stringify({ message: String(big.version), pid: process.pid, heap: process.memoryUsage().heapUsed, node: process.version }));
};
`,
    'big.js': `// version ${version}\n${functions}\nmodule.exports = { version: ${version}, first: f0, last: f399 };\n`,
  };
}

let home: Awaited<ReturnType<typeof pm2Home>>;
let data: Awaited<ReturnType<typeof tempDir>>;
let agent: Pm2Agent;

beforeAll(async () => {
  home = await pm2Home();
  data = await tempDir('hd-data-');
  agent = createPm2Agent({ dataDir: data.dir, pm2Home: home.home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000, updateTimeoutMs: 10_000 });
});

afterAll(async () => {
  await agent?.close();
  await home?.cleanup();
  await data?.cleanup();
});

it(`keeps a PM2 worker's heap within 2 MB over ${UPDATES} hot updates of a large module`, async () => {
  const port = await freePort();
  let last: ActivationRequest = await release(data.dir, 'mem', 'v0', app(0, port));
  expect((await agent.activate(last)).status).toBe('succeeded');
  let first = 0;
  for (let i = 1; i <= UPDATES; i++) {
    last = await release(data.dir, 'mem', `v${i}`, app(i, port), { version: last.version, releaseDir: last.releaseDir });
    const result = await agent.activate(last);
    expect(result.status, result.reason).toBe('succeeded');
    if (i === 1) first = ((await ask(port)) as Answer & { heap: number }).heap;
  }
  const end = (await ask(port)) as Answer & { heap: number };
  expect(end.message).toBe(String(UPDATES));
  expect(end.node).toBe(process.version);
  expect(end.heap - first, `${end.node}: ${((end.heap - first) / MB).toFixed(2)} MB`).toBeLessThan(2 * MB);
}, 120_000);
