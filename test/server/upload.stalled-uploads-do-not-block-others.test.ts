import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectUnchanged, get, serverWithRelease, snapshotApp, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
const stops: (() => void)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await server.close();
});

/**
 * An upload sent at 2 KB/s (a slow link, or a client holding a slot on purpose): 2 KB each
 * second for as long as the test runs. Resolves with the number of bytes sent once stopped.
 */
function trickle(port: number, app: string, version: string, bundle: Buffer): { sent: () => number; answered: () => boolean } {
  let at = 0;
  let answered = false;
  const req = http.request({
    host: '127.0.0.1', port, method: 'PUT', path: `/v1/apps/${app}/releases/${version}`,
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip', 'content-length': String(bundle.length) },
  }, (res) => {
    answered = true;
    res.resume();
  });
  req.on('error', () => undefined);
  const send = () => {
    req.write(bundle.subarray(at, at + 2048));
    at += 2048;
  };
  send();
  const timer = setInterval(send, 1000);
  stops.push(() => {
    clearInterval(timer);
    req.destroy();
  });
  return { sent: () => at, answered: () => answered };
}

it('two uploads stalled at 2 KB/s do not hold up another app\'s small push', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  // Incompressible, so each slow upload needs minutes to finish.
  const slow = await makeBundle({ ...appFiles('slow'), 'assets/blob.bin': randomBytes(512 * 1024).toString('base64') });
  const slowOnes = [trickle(port, 'demo', '2.0.0', slow), trickle(port, 'demo', '3.0.0', slow)];
  await waitFor('both slow uploads to be in the unpackers', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 2, 10_000);

  const small = await makeBundle(appFiles('other@1.0.0'));
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/apps/other/releases/1.0.0`, {
    method: 'PUT', body: small, headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' },
    signal: AbortSignal.timeout(15_000),
  });
  const ms = performance.now() - started;
  expect(res.status, await res.text()).toBe(201);
  // The slow ones are still arriving, unanswered: the push went past them, not after them.
  for (const upload of slowOnes) {
    expect(upload.answered()).toBe(false);
    expect(upload.sent()).toBeLessThan(slow.length);
  }
  expect(ms, `the push took ${ms.toFixed(0)} ms`).toBeLessThan(5_000);
  expect((await get(server.app, '/v1/apps/other')).json()).toMatchObject({ current: '1.0.0' });

  // The slow uploads cut, nothing of theirs stays and demo still serves 1.0.0.
  for (const stop of stops.splice(0)) stop();
  await waitFor('the slow uploads\' staging to be removed', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 0, 10_000);
  expect(await snapshotApp(server.dataDir, 'demo')).toEqual(before);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
