import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { CHILD_FIXTURE_DIR, putBundle, useChildServers } from '../helpers/child-server.js';
import { openEvents } from '../helpers/sse.js';
import { TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const children = useChildServers('hotdeploy-sse-load-');
const FIXTURE = path.join(CHILD_FIXTURE_DIR, 'events-load-server.mjs');

// Sized so that what each stalled client is sent (~16 MB) is far more than the kernel buffers a
// stalled loopback socket (a few MB): without a bound the rest stays in the service's memory, about
// 30 clients x 12 MB. Each deployment is 10 events of 40 KB, as a host reports an app of hundreds of
// modules. HOTDEPLOY_TEST_SSE_CLIENTS=200 runs the full figure (200 stalled clients x 40 deploys).
const STALLED = Number(process.env.HOTDEPLOY_TEST_SSE_CLIENTS ?? 30);
const DEPLOYS = 40;
const EVENTS_PER_DEPLOY = 10;
const EVENT_BYTES = 40 * 1024;
const RSS_BOUND_MB = 50;

function rssMb(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(line?.[1]) / 1024;
}

/** A client that reads the response head, then never reads again; `resume` reads the rest and resolves at its end. */
function stalledClient(port: number): Promise<{ socket: net.Socket; resume: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`);
    });
    socket.once('error', reject);
    let text = '';
    socket.setEncoding('utf8');
    socket.once('data', (chunk: string) => {
      text += chunk;
      socket.pause();
      resolve({
        socket,
        resume: () => new Promise((done) => {
          socket.on('data', (c: string) => (text += c));
          socket.once('close', () => done(text));
          socket.resume();
        }),
      });
    });
  });
}

it('drops event streams that stop reading, so stalled clients x many deploys keep the service\'s memory bounded', async () => {
  const server = await children.start(children.dir(), { eventsPerDeploy: EVENTS_PER_DEPLOY, eventBytes: EVENT_BYTES }, undefined, FIXTURE);
  const pid = server.child.pid as number;
  const port = Number(new URL(server.url).port);
  for (const version of ['1.0.0', '2.0.0']) {
    const res = await putBundle(server.url, 'demo', version, await makeBundle(appFiles(`demo@${version}`)));
    expect(res.status, await res.text()).toBe(201);
  }
  const reader = await openEvents<{ type: string; seq: number }>(port, TOKENS.admin);
  const stalled = await Promise.all(Array.from({ length: STALLED }, () => stalledClient(port)));
  const before = rssMb(pid);

  for (let i = 0; i < DEPLOYS; i++) {
    const res = await fetch(`${server.url}/v1/apps/demo/activate`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: i % 2 === 0 ? '1.0.0' : '2.0.0' }),
    });
    expect(res.status, await res.text()).toBe(200);
  }
  const after = rssMb(pid);
  console.log(`${STALLED} stalled event clients x ${DEPLOYS} deploys: service RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB`);
  expect(after - before, `RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB`).toBeLessThan(RSS_BOUND_MB);

  // A client that reads keeps its stream and gets every event.
  await waitFor('the reading client to see every deployment finish',
    () => reader.frames.filter((f) => f.data.type === 'finished').length === DEPLOYS, 20_000);
  reader.close();

  // A stalled client's stream was ended by the service: reading on, it gets what was sent and then the end.
  const text = await stalled[0]!.resume();
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1] as string);
  expect(ids.length).toBeGreaterThan(0);
  expect(ids.length).toBeLessThan(DEPLOYS * (EVENTS_PER_DEPLOY + 3));
  // It reconnects with Last-Event-ID and is told what it missed (or, evicted from the replay buffer, to read the state again).
  const again = await openEvents<{ type?: string; reason?: string }>(port, TOKENS.admin, { lastEventId: ids.at(-1) as string });
  await waitFor('the reconnected client to get a replay or a resync', () => again.frames.length > 0, 10_000);
  again.close();
  for (const { socket } of stalled) socket.destroy();
}, 120_000);
