import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import type { HostedApp } from '../../agent/index.js';
import { listen } from '../../agent/worker/http-server.js';
import { cleanupStack, serve, waitFor, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[]; release: Record<string, () => void> };
beforeEach(() => {
  g.log = [];
  g.release = {};
});
afterEach(t.run);

// `/slow` answers only when the test calls globalThis.release[version]().
const entry = (v: string): string => `module.hot.retire(() => globalThis.log.push('retire ${v}'));
module.exports = (req, res) => {
  if (req.url === '/slow') {
    globalThis.log.push('slow started on ${v}');
    globalThis.release['${v}'] = () => res.end('slow ${v}');
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

// Drain timeouts far beyond the waits below: a retirement seen within them was released by the
// request being counted out, not by the timeout.
const LONG_DRAIN_MS = 120_000;

const servers = {
  "the worker's own server (TrackedResponse)": async (app: HostedApp) => {
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
    await waitFor(() => g.release.v1 !== undefined, 5000, 'the slow request');
    expect((await app.update(v2)).outcome).toBe('hot');
    expect(g.log).toEqual(['slow started on v1']);
    g.release.v1!();
    expect(await slow.until('slow v1')).toMatch(/^HTTP\/1\.1 200 [\s\S]*slow v1$/);
    await waitFor(() => g.log.includes('retire v1'), 10_000, 'retire v1');
    slow.socket.destroy();
  });

  it('counts out a request whose client went away before the answer', async () => {
    const { app, port, v2 } = await setUp();
    const slow = await sendSlow(port);
    await waitFor(() => g.release.v1 !== undefined, 5000, 'the slow request');
    expect((await app.update(v2)).outcome).toBe('hot');
    expect(g.log).toEqual(['slow started on v1']);
    slow.socket.destroy();
    await waitFor(() => g.log.includes('retire v1'), 10_000, 'retire v1 after the client went away');
  });

  it('counts every request of a generation, not only the first', async () => {
    const { app, port, v2 } = await setUp();
    const first = await sendSlow(port);
    await waitFor(() => g.release.v1 !== undefined, 5000, 'the first slow request');
    const release1 = g.release.v1!;
    delete g.release.v1;
    const second = await sendSlow(port);
    await waitFor(() => g.release.v1 !== undefined, 5000, 'the second slow request');
    await app.update(v2);
    first.socket.destroy();
    release1();
    // One of two still in flight: v1 is not retired until the second one ends too.
    const probe = await sendSlow(port);
    await waitFor(() => g.release.v2 !== undefined, 5000, 'the slow request on v2');
    g.release.v2!();
    expect(await probe.until('slow v2')).toMatch(/slow v2$/);
    probe.socket.destroy();
    expect(g.log).not.toContain('retire v1');
    g.release.v1!();
    await waitFor(() => g.log.includes('retire v1'), 10_000, 'retire v1');
    second.socket.destroy();
  });
});
