import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { expectUnchanged, get, serverWithRelease, snapshotApp, TOKENS, type TestServer } from '../helpers/server.js';
import { trickleUpload, type Trickle } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
const slowOnes: Trickle[] = [];
afterEach(async () => {
  for (const upload of slowOnes.splice(0)) upload.stop();
  await server.close();
});

it('two uploads stalled at 2 KB/s do not hold up another app\'s small push', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  // Incompressible, so each slow upload needs minutes to finish.
  const slow = await makeBundle({ ...appFiles('slow'), 'assets/blob.bin': randomBytes(512 * 1024).toString('base64') });
  slowOnes.push(trickleUpload(port, 'demo', '2.0.0', slow), trickleUpload(port, 'demo', '3.0.0', slow));
  await waitFor('both slow uploads to be in the unpackers', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 2, 10_000);

  const small = await makeBundle(appFiles('other@1.0.0'));
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/apps/other/releases/1.0.0`, {
    method: 'PUT', body: small, headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' },
    signal: AbortSignal.timeout(15_000),
  });
  const ms = performance.now() - started;
  console.log(`a small push past two uploads stalled at 2 KB/s: ${ms.toFixed(0)} ms`);
  expect(res.status, await res.text()).toBe(201);
  // The slow ones are still arriving, unanswered: the push went past them, not after them.
  for (const upload of slowOnes) {
    expect(upload.status()).toBeUndefined();
    expect(upload.sent()).toBeLessThan(slow.length);
  }
  expect(ms, `the push took ${ms.toFixed(0)} ms`).toBeLessThan(5_000);
  expect((await get(server.app, '/v1/apps/other')).json()).toMatchObject({ current: '1.0.0' });

  // The slow uploads cut, nothing of theirs stays and demo still serves 1.0.0.
  for (const upload of slowOnes.splice(0)) upload.stop();
  await waitFor('the slow uploads\' staging to be removed', async () => (await readdir(path.join(server.dataDir, 'tmp'))).length === 0, 10_000);
  expect(await snapshotApp(server.dataDir, 'demo')).toEqual(before);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
