import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeEach, expect, it } from 'vitest';
import { appFiles, makeBundle, rawApp, rawTar } from '../helpers/bundles.js';
import { putBundle, useChildServers, type ChildServer } from '../helpers/child-server.js';
import { snapshotApp, TOKENS } from '../helpers/server.js';

const children = useChildServers('hotdeploy-disk-');
let server: ChildServer;
let dir: string;
beforeEach(() => { dir = children.dir(); });

const put = (url: string, version: string, body: Buffer) => putBundle(url, 'demo', version, body);

/** 500 DEPLOY_ERR_STORAGE, nothing left in tmp/, and 1.0.0 still the only release and current. */
async function expectStorageRefusal(res: Response, before: Record<string, string>): Promise<void> {
  expect(res.status).toBe(500);
  const body = await res.json() as { message: string };
  expect(body).toMatchObject({ statusCode: 500, code: 'DEPLOY_ERR_STORAGE' });
  // The errno, never the server's own paths: a token holder learns nothing of the disk's layout.
  expect(body.message).toMatch(/E[A-Z]+ (in|on) /);
  expect(body.message).not.toContain(dir);
  expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  expect(await snapshotApp(dir, 'demo')).toEqual(before);
  const status = await fetch(`${server.url}/v1/apps/demo`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(await status.json()).toMatchObject({ current: '1.0.0', releases: [{ version: '1.0.0' }] });
}

it('answers DEPLOY_ERR_STORAGE when a write fails while unpacking, and nothing becomes visible', async () => {
  // Files may not grow past 2 MB in this server process (ulimit -f): a real EFBIG from the kernel.
  server = await children.start(dir, {}, 2048);
  expect((await put(server.url, '1.0.0', await makeBundle(appFiles('demo@1.0.0')))).status).toBe(201);
  const before = await snapshotApp(dir, 'demo');

  // 3 MB of hex text: about 1.5 MB compressed (the upload fits), 3 MB unpacked (one file does not).
  const big = gzipSync(rawTar([...rawApp('demo@2.0.0'), { path: 'data/big.txt', body: randomBytes(1536 * 1024).toString('hex') }]));
  expect(big.length).toBeLessThan(2 * 1024 * 1024);
  await expectStorageRefusal(await put(server.url, '2.0.0', big), before);
});

it('answers DEPLOY_ERR_STORAGE when the bundle itself cannot be kept, and nothing becomes visible', async () => {
  server = await children.start(dir, {}, 2048);
  expect((await put(server.url, '1.0.0', await makeBundle(appFiles('demo@1.0.0')))).status).toBe(201);
  const before = await snapshotApp(dir, 'demo');

  // 3 MB of random bytes in 100 KB files: every file fits under the 2 MB limit, the .tgz does not.
  const files = Array.from({ length: 30 }, (_, i) => ({ path: `data/${i}.bin`, body: randomBytes(100 * 1024) }));
  const big = gzipSync(rawTar([...rawApp('demo@2.0.0'), ...files]));
  expect(big.length).toBeGreaterThan(3 * 1024 * 1024 - 100 * 1024);
  await expectStorageRefusal(await put(server.url, '2.0.0', big), before);
});
