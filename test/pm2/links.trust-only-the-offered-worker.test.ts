import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';

// Any process of the user can connect to <dataDir>/agent/workers.sock (its path is in every app's
// env). A link speaks only for the worker the agent offered it to (a nonce sent through PM2's IPC):
// a process claiming a real worker's pm_id and pid is closed and never answers for it; a line over
// 1 MiB closes the connection, and a 32 MB flood costs the agent milliseconds.

let hd: Hotdeploy;
let port: number;
let socket: string;
const app = (version: string): Record<string, string | object> => handlerApp({ name: 'web', version, port, message: version });

/** Runs `script` in a child node process with the socket path as argv[1]; resolves with its stdout lines (JSON). */
function child(script: string): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', script, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.on('error', reject);
    proc.on('exit', () => resolve(out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown)));
  });
}

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  socket = path.join(hd.dataDir, 'agent', 'workers.sock');
  const { deployment } = await push(hd, 'web', 'v1', app('v1'));
  expect(deployment.status, deployment.reason).toBe('succeeded');
});

afterAll(async () => {
  await hd?.close();
});

it('a process that claims to be a worker is closed and answers nothing for it', async () => {
  const [worker] = (await appStatus(hd, 'web')).workers;
  // Says hello as the real worker (its pm_id and pid), then answers every update "hot", and says
  // when the agent closed the connection (or that it sent an update and kept the link).
  const impostor = child(`
const net = require('node:net');
const s = net.createConnection(process.argv[1]);
const hello = { kind: 'hello', pmId: ${worker!.pmId}, pid: ${worker!.pid}, version: 'v1', nonce: 'guessed' };
s.on('connect', () => s.write(JSON.stringify(hello) + '\\n'));
let buf = '';
s.on('data', (d) => {
  buf += d;
  for (const line of buf.split('\\n').slice(0, -1)) {
    const m = JSON.parse(line);
    if (m.kind === 'update') s.write(JSON.stringify({ kind: 'updated', requestId: m.requestId, pmId: hello.pmId, pid: hello.pid, version: m.version,
      result: { outcome: 'hot', from: '', to: m.releaseDir, outdated: [], disposed: [], accepted: [], durationMs: 0 } }) + '\\n');
    console.log(JSON.stringify({ got: m.kind }));
  }
  buf = buf.slice(buf.lastIndexOf('\\n') + 1);
});
s.on('close', () => { console.log(JSON.stringify({ closed: true })); process.exit(0); });
setTimeout(() => { console.log(JSON.stringify({ closed: false })); process.exit(0); }, 8000);
`);
  const { deployment } = await push(hd, 'web', 'v2', app('v2'));
  expect(await impostor).toEqual([{ closed: true }]);
  expect(deployment.status, deployment.reason).toBe('succeeded');
  // Every worker really serves v2, and the deployment names the real processes.
  const serving = await pidsServing(port, 2);
  expect(serving.messages).toEqual(['v2']);
  expect(deployment.workers.map((w) => w.pid).sort()).toEqual(serving.pids);
});

it('a 32 MB line, or 32 MB of lines, costs the agent milliseconds and closes the connection', async () => {
  for (const flood of ['one line', 'many lines']) {
    const chunk = flood === 'one line' ? `Buffer.alloc(1 << 20, 120)` : `Buffer.from('{"kind":"pong"}\\n'.repeat(65536)).subarray(0, 1 << 20)`;
    const cpu = process.cpuUsage();
    const started = Date.now();
    const writer = child(`
const net = require('node:net');
const s = net.createConnection(process.argv[1]);
const chunk = ${chunk};
let sent = 0;
const pump = () => { while (sent < 32 && s.write(chunk)) sent += 1; if (sent < 32) s.once('drain', () => { sent += 1; pump(); }); };
s.on('connect', pump);
s.on('error', () => {});
s.on('close', () => { console.log(JSON.stringify({ sentMiB: sent })); process.exit(0); });
`);
    // The agent stays responsive meanwhile: the service answers at once.
    const health = await fetch(`${hd.url}/healthz`);
    expect(health.status).toBe(200);
    const [result] = await writer;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(`flood (${flood}): agent CPU ${cpuMs.toFixed(1)} ms, closed after ${Date.now() - started} ms, ${(result as { sentMiB: number }).sentMiB} MiB written`);
    // Closed long before 32 MiB were read; the whole flood cost this process (agent, service and
    // test) well under a second of CPU on a loaded 2-core machine.
    expect((result as { sentMiB: number }).sentMiB).toBeLessThan(32);
    expect(cpuMs).toBeLessThan(500);
  }
  // The workers' own links still work.
  const { deployment } = await push(hd, 'web', 'v3', app('v3'));
  expect(deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
});
