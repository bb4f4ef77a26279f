import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { ServerOptions } from '../../services/server/options.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectUnchanged, get, serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';
import { trickleUpload, type Trickle } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
const trickles: Trickle[] = [];
afterEach(async () => {
  for (const upload of trickles.splice(0)) upload.stop();
  await server.close();
});

async function start(options: Partial<ServerOptions>): Promise<{ port: number; before: Record<string, string>; slow: Buffer }> {
  let before;
  ({ server, before } = await serverWithRelease(options));
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  // Incompressible, so an upload of it at 2 KB/s lasts minutes.
  const slow = await makeBundle({ ...appFiles('slow'), 'assets/blob.bin': randomBytes(256 * 1024).toString('base64') });
  return { port, before, slow };
}

function push(port: number, app: string, version: string, body: Buffer): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/v1/apps/${app}/releases/${version}`, {
    method: 'PUT', body, headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' },
    signal: AbortSignal.timeout(30_000),
  });
}

async function staged(): Promise<number> {
  return (await readdir(path.join(server.dataDir, 'tmp'))).length;
}

it('queues an upload past maxUploads, refuses one past the queue with 429 and Retry-After, and a queued one waits no longer than the idle timeout', async () => {
  const { port, before, slow } = await start({ maxUploads: 1, maxQueuedUploads: 1, uploadIdleTimeoutMs: 2_500 });
  // The one place, held by a slow upload (2 KB each second keeps it inside the idle timeout).
  trickles.push(trickleUpload(port, 'demo', '2.0.0', slow));
  await waitFor('the slow upload to hold the place', async () => (await staged()) === 1, 10_000);
  // The queue's one place, held by a second slow upload.
  trickles.push(trickleUpload(port, 'demo', '3.0.0', slow));

  const small = await makeBundle(appFiles('other@1.0.0'));
  // Past the queue: refused at once.
  const busy = await waitFor('a push past the queue to be refused', async () => {
    const res = await push(port, 'other', '1.0.0', small);
    return res.status === 429 ? res : (await res.body?.cancel(), undefined);
  }, 10_000);
  expect(busy.headers.get('retry-after')).toBe('5');
  expect(await busy.json()).toEqual({ statusCode: 429, code: 'DEPLOY_ERR_BUSY', message: expect.any(String) });

  // The queued one is answered once it has waited the idle timeout: 429, not a hang.
  const queued = trickles[1] as Trickle;
  await waitFor('the queued upload to be answered', () => queued.status(), 10_000);
  expect(queued.status()).toBe(429);
  // It was never given a place: only the first upload has a staging folder.
  expect(await staged()).toBe(1);

  // Once the place is free, an upload goes through; nothing the refused ones sent was kept.
  (trickles[0] as Trickle).stop();
  await waitFor('the slow upload\'s staging to be removed', async () => (await staged()) === 0, 10_000);
  const res = await push(port, 'other', '1.0.0', small);
  expect(res.status, await res.text()).toBe(201);
  await expectUnchanged(server, 'demo', before, '1.0.0');
  expect((await get(server.app, '/v1/apps/other')).json()).toMatchObject({ current: '1.0.0' });
});

it('admits a queued upload as soon as the place it waits for is free', async () => {
  const { port, before, slow } = await start({ maxUploads: 1, maxQueuedUploads: 4, uploadIdleTimeoutMs: 20_000 });
  const holder = trickleUpload(port, 'demo', '2.0.0', slow);
  trickles.push(holder);
  await waitFor('the slow upload to hold the place', async () => (await staged()) === 1, 10_000);

  const queued = push(port, 'other', '1.0.0', await makeBundle(appFiles('other@1.0.0')));
  // Still queued while the place is held: no staging folder of its own yet.
  await waitFor('the queued upload to be waiting', async () => (await get(server.app, '/v1/apps/other')).statusCode === 404 && (await staged()) === 1, 5_000);
  holder.stop();
  const res = await queued;
  expect(res.status, await res.text()).toBe(201);
  expect((await get(server.app, '/v1/apps/other')).json()).toMatchObject({ current: '1.0.0' });
  await waitFor('every staging folder to be removed', async () => (await staged()) === 0, 10_000);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
