import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import type { HostedApp } from '../../agent/index.js';
import { listen } from '../../agent/worker/http-server.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[]; release: Record<string, () => void>; pending: (() => void)[] };
beforeEach(() => {
  g.log = [];
  g.release = {};
  g.pending = [];
});
afterEach(t.run);

// `/slow` answers only when the test calls globalThis.release[version]() (the latest such request)
// or globalThis.pending[n]() (the n-th, from 0).
const entry = (v: string): string => `module.hot.retire(() => globalThis.log.push('retire ${v}'));
module.exports = (req, res) => {
  if (req.url === '/slow') {
    globalThis.log.push('slow started on ${v}');
    const answer = () => res.end('slow ${v}');
    globalThis.release['${v}'] = answer;
    globalThis.pending.push(answer);
    return;
  }
  res.end('${v}');
};
`;

/** A raw keep-alive socket with one request sent on it; `until` resolves once `text` arrived. */
async function sendSlow(port: number): Promise<{ socket: net.Socket; until: (text: string) => Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let data = '';
  const waiters: (() => void)[] = [];
  socket.setEncoding('utf8').on('data', (c: string) => {
    data += c;
    for (const w of waiters.splice(0)) w();
  });
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  const until = async (text: string): Promise<string> => {
    while (!data.includes(text)) await new Promise<void>((resolve) => waiters.push(resolve));
    return data;
  };
  return { socket, until };
}

/**
 * v1 is not retired yet, even after a whole request on v2 went round (time enough for a wrongly
 * released retirement to have run).
 */
async function expectStillInUse(port: number): Promise<void> {
  const probe = await sendSlow(port);
  await waitFor('the slow request on v2', () => g.release.v2 !== undefined, 5000);
  g.release.v2!();
  expect(await probe.until('slow v2')).toMatch(/slow v2$/);
  probe.socket.destroy();
  expect(g.log).not.toContain('retire v1');
}

// Drain timeouts far beyond the waits below: a retirement seen within them was released by the
// request being counted out, not by the timeout.
const LONG_DRAIN_MS = 120_000;

const servers = {
  "the worker's own server (its connections' last responses)": async (app: HostedApp) => {
    const owned = await listen(app.handler, 0);
    return { port: owned.port, close: () => owned.close(1_000) };
  },
  'any other http server (a close listener)': async (app: HostedApp) => {
    const s = await serve(app.handler);
    return { port: Number(new URL(s.url).port), close: s.close };
  },
};

describe.each(Object.entries(servers))('on %s', (_name, start) => {
  async function setUp(): Promise<{ app: HostedApp; port: number; v2: string }> {
    const root = await t.root();
    const v1 = await writeRelease(root, { 'index.js': entry('v1') });
    const v2 = await writeRelease(root, { 'index.js': entry('v2') });
    const app = t.defer(await hostApp({ name: 'a', dir: v1, drainTimeoutMs: LONG_DRAIN_MS }));
    const server = t.defer(await start(app));
    return { app, port: server.port, v2 };
  }

  it('retires the old version once its in-flight request finished', async () => {
    const { app, port, v2 } = await setUp();
    const slow = await sendSlow(port);
    await waitFor('the slow request', () => g.release.v1 !== undefined, 5000);
    expect((await app.update(v2)).outcome).toBe('hot');
    expect(g.log).toEqual(['slow started on v1']);
    g.release.v1!();
    expect(await slow.until('slow v1')).toMatch(/^HTTP\/1\.1 200 [\s\S]*slow v1$/);
    await waitFor('retire v1', () => g.log.includes('retire v1'), 10_000);
    slow.socket.destroy();
  });

  it('counts out a request whose client went away before the answer', async () => {
    const { app, port, v2 } = await setUp();
    const slow = await sendSlow(port);
    await waitFor('the slow request', () => g.release.v1 !== undefined, 5000);
    expect((await app.update(v2)).outcome).toBe('hot');
    expect(g.log).toEqual(['slow started on v1']);
    slow.socket.destroy();
    await waitFor('retire v1 after the client went away', () => g.log.includes('retire v1'), 10_000);
  });

  it('counts every request of a generation, not only the first', async () => {
    const { app, port, v2 } = await setUp();
    const first = await sendSlow(port);
    await waitFor('the first slow request', () => g.release.v1 !== undefined, 5000);
    const release1 = g.release.v1!;
    delete g.release.v1;
    const second = await sendSlow(port);
    await waitFor('the second slow request', () => g.release.v1 !== undefined, 5000);
    await app.update(v2);
    first.socket.destroy();
    release1();
    // One of two still in flight: v1 is not retired until the second one ends too.
    await expectStillInUse(port);
    g.release.v1!();
    await waitFor('retire v1', () => g.log.includes('retire v1'), 10_000);
    second.socket.destroy();
  });

  it('waits for pipelined requests, which a connection answers in order', async () => {
    const { app, port, v2 } = await setUp();
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let data = '';
    socket.setEncoding('utf8').on('data', (c: string) => (data += c));
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor('both pipelined requests', () => g.pending.length === 2, 5000);
    expect((await app.update(v2)).outcome).toBe('hot');
    const [first, second] = g.pending as [() => void, () => void];
    // The first is answered; the second, which came on the same connection, is still running on v1.
    first();
    await waitFor('the first answer on the pipelined connection', () => data.split('slow v1').length === 2, 5000);
    await expectStillInUse(port);
    second();
    await waitFor('the second answer on the pipelined connection', () => data.split('slow v1').length === 3, 5000);
    await waitFor('retire v1', () => g.log.includes('retire v1'), 10_000);
    socket.destroy();
  });
});
