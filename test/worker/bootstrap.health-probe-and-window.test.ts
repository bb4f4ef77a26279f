import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkerMessage } from '../../agent/pm2/protocol.js';
import { describeProbe } from '../../agent/runtime/probe.js';
import { underLoad } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { cleanupStack, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';
import { startWorker } from './worker-process.js';

const t = cleanupStack();
afterEach(t.run);

const PROBE = { path: '/', timeoutMs: 2_000 };

function reply<K extends WorkerMessage['kind']>(message: WorkerMessage, kind: K): Extract<WorkerMessage, { kind: K }> {
  expect(message.kind).toBe(kind);
  return message as Extract<WorkerMessage, { kind: K }>;
}

async function worker(files: Record<string, string | object>, port: number): Promise<{ worker: Awaited<ReturnType<typeof startWorker>>; root: string }> {
  const root = await t.root();
  const dir = await writeRelease(root, { 'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, ...files }, { name: 'v1' });
  const w = t.defer(await startWorker({ dataDir: path.join(root, 'data'), app: 'h', version: 'v1', releaseDir: dir }));
  return { worker: w, root };
}

describe('the health probe, run by the worker through its own handler', () => {
  it('answers the status and the start of the body, in process', async () => {
    const { worker: w } = await worker({ 'index.js': "module.exports = (req, res) => res.end('fine at ' + req.url + ' from ' + req.socket.remoteAddress);" }, await freePort());
    const probed = reply(await w.request({ kind: 'probe', probe: { ...PROBE, path: '/health?x=1' } }), 'probed');
    expect(probed.probe).toMatchObject({ ok: true, status: 200, bodyStart: 'fine at /health?x=1 from 127.0.0.1' });
  });

  it('fails an app whose / starts answering 500 after an update, quoting the status and the body', async () => {
    const { worker: w, root } = await worker({ 'index.js': "module.exports = (req, res) => res.end(require('./msg'));", 'msg.js': "module.exports = 'one';" }, await freePort());
    const v2 = await writeRelease(root, {
      'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port: 1 } },
      'index.js': "module.exports = (req, res) => { res.statusCode = 500; res.end('database unreachable: ' + require('./msg')); };",
      'msg.js': "module.exports = 'two';",
    }, { name: 'v2' });
    const updated = reply(await w.request({ kind: 'update', version: 'v2', releaseDir: v2, probe: PROBE }), 'updated');
    expect(updated.result.outcome).toBe('hot');
    expect(updated.probe).toMatchObject({ ok: false, status: 500, bodyStart: 'database unreachable: two' });
    expect(describeProbe(PROBE, updated.probe!)).toBe('GET / answered 500: database unreachable: two');
  });

  it('honours health.expect (an exact status) and reports a handler that never answers', async () => {
    const { worker: w } = await worker({ 'index.js': "module.exports = (req, res) => { if (req.url !== '/hang') res.end('ok'); };" }, await freePort());
    expect(reply(await w.request({ kind: 'probe', probe: { ...PROBE, expect: [204] } }), 'probed').probe).toMatchObject({ ok: false, status: 200 });
    const hung = reply(await w.request({ kind: 'probe', probe: { path: '/hang', timeoutMs: 200 } }), 'probed').probe;
    expect(hung).toMatchObject({ ok: false, status: 0, error: 'no answer within 200 ms' });
  });

  it('is skipped in process mode, where the readiness gate stands', async () => {
    const port = await freePort();
    const { worker: w } = await worker({
      'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { mode: 'process' } },
      'index.js': `require('http').createServer((req, res) => res.end('x')).listen(${port});`,
    }, port);
    expect(reply(await w.request({ kind: 'probe', probe: PROBE }), 'probed').probe).toMatchObject({ ok: true, skipped: expect.stringContaining('process mode') });
  });
});

describe('the health window after a hot swap', () => {
  const flaky = `let n = 0;
module.exports = (req, res) => {
  // Every third request fails, as a bug on one code path would.
  if (++n % 3 === 0) { res.statusCode = 500; res.end('flaky'); return; }
  res.end(require('./msg'));
};`;

  it('trips when 5xx answers pass the threshold under a load loop, and says what it counted', async () => {
    const port = await freePort();
    const { worker: w, root } = await worker({ 'index.js': "module.exports = (req, res) => res.end(require('./msg'));", 'msg.js': "module.exports = 'one';" }, port);
    const v2 = await writeRelease(root, { 'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, 'index.js': flaky, 'msg.js': "module.exports = 'two';" }, { name: 'v2' });
    const updated = reply(await w.request({ kind: 'update', version: 'v2', releaseDir: v2, probe: PROBE, window: { windowMs: 30_000, threshold: 5, errorRate: 0.1 } }), 'updated');
    // The probe's own request is not counted, and passes (the first request of the new version).
    expect(updated).toMatchObject({ result: { outcome: 'hot' }, probe: { ok: true } });
    let report: Extract<WorkerMessage, { kind: 'health-window' }> | undefined;
    const load = await underLoad(port, 4, async () => {
      report = reply(await w.next((m) => m.kind === 'health-window'), 'health-window');
    });
    expect(load.failures.length).toBeGreaterThanOrEqual(5);
    expect(report).toMatchObject({ app: 'h', version: 'v2' });
    expect(report!.report).toMatchObject({ tripped: true, windowMs: 30_000, exceptions: 0, sample: 'GET / answered 500' });
    expect(report!.report.errors5xx).toBeGreaterThanOrEqual(5);
    expect(report!.report.requests).toBeGreaterThanOrEqual(report!.report.errors5xx);
    await waitFor('the window on stderr', () => w.stderr().includes('the health window tripped'), 5_000);
  });

  it('passes when the window closes below the threshold', async () => {
    const port = await freePort();
    const { worker: w, root } = await worker({ 'index.js': "module.exports = (req, res) => res.end('one');" }, port);
    const v2 = await writeRelease(root, { 'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, 'index.js': "module.exports = (req, res) => res.end('two');" }, { name: 'v2' });
    reply(await w.request({ kind: 'update', version: 'v2', releaseDir: v2, window: { windowMs: 300, threshold: 1, errorRate: 0 } }), 'updated');
    const ended = reply(await w.next((m) => m.kind === 'health-window'), 'health-window');
    expect(ended.report).toMatchObject({ tripped: false, errors5xx: 0, exceptions: 0 });
  });

  it('does not start when the probe failed (the agent rolls that worker back instead)', async () => {
    const port = await freePort();
    const { worker: w, root } = await worker({ 'index.js': "module.exports = (req, res) => res.end('one');" }, port);
    const v2 = await writeRelease(root, { 'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, 'index.js': "module.exports = (req, res) => { res.statusCode = 503; res.end(); };" }, { name: 'v2' });
    const updated = reply(await w.request({ kind: 'update', version: 'v2', releaseDir: v2, probe: PROBE, window: { windowMs: 200, threshold: 1, errorRate: 0 } }), 'updated');
    expect(updated.probe).toMatchObject({ ok: false, status: 503 });
    // A window of 200 ms would have reported by then.
    await expect(w.next((m) => m.kind === 'health-window', 1_000)).rejects.toThrow('no matching worker message');
  });

  it('ends without a report when a newer swap (a swap back) comes', async () => {
    const port = await freePort();
    const { worker: w, root } = await worker({ 'index.js': "module.exports = (req, res) => res.end('one');" }, port);
    const v1 = path.join(root, 'v1');
    const v2 = await writeRelease(root, { 'package.json': { name: 'h', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, 'index.js': "module.exports = (req, res) => res.end('two');" }, { name: 'v2' });
    reply(await w.request({ kind: 'update', version: 'v2', releaseDir: v2, window: { windowMs: 300, threshold: 1, errorRate: 0 } }), 'updated');
    expect(reply(await w.request({ kind: 'update', version: 'v1', releaseDir: v1 }), 'updated').result.outcome).toBe('hot');
    // The 300 ms window of v2 would have reported by then.
    await expect(w.next((m) => m.kind === 'health-window', 1_000)).rejects.toThrow('no matching worker message');
  });
});
