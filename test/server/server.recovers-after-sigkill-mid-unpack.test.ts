import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeEach, expect, it } from 'vitest';
import { appFiles, makeBundle, rawApp, rawTar } from '../helpers/bundles.js';
import { putBundle, useChildServers, type ChildServer } from '../helpers/child-server.js';
import { snapshotApp, TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const children = useChildServers('hotdeploy-sigkill-');
let server: ChildServer;
let dir: string;
beforeEach(() => { dir = children.dir(); });

const put = (url: string, version: string, body: Buffer) => putBundle(url, 'demo', version, body);

/** True once some staging directory has started receiving unpacked entries. */
async function unpacking(dataDir: string): Promise<boolean> {
  for (const staging of await readdir(path.join(dataDir, 'tmp')).catch(() => [] as string[])) {
    const raw = await readdir(path.join(dataDir, 'tmp', staging, 'raw')).catch(() => [] as string[]);
    if (raw.length > 0) return true;
  }
  return false;
}

it('leaves no half release after a SIGKILL in the middle of an unpack, and the restart recovers', async () => {
  server = await children.start(dir);
  expect((await put(server.url, '1.0.0', await makeBundle(appFiles('demo@1.0.0')))).status).toBe(201);
  const before = await snapshotApp(dir, 'demo');
  const auditBefore = await readFile(path.join(dir, 'audit.log'), 'utf8');

  // 8,000 files of random bytes: slow enough to unpack that the kill lands in the middle.
  const files = Array.from({ length: 8000 }, (_, i) => ({ path: `data/${i % 40}/${i}.bin`, body: randomBytes(1024) }));
  const big = gzipSync(rawTar([...rawApp('demo@2.0.0'), ...files]), { level: 1 });
  const pending = put(server.url, '2.0.0', big).catch((err: unknown) => err);
  await waitFor('the unpack to start', () => unpacking(dir), 20_000);
  await server.kill();
  expect(await pending).toBeInstanceOf(Error);
  // The kill landed mid-unpack: a staging directory was left behind, and 2.0.0 never became visible.
  expect((await readdir(path.join(dir, 'tmp'))).length).toBeGreaterThan(0);
  expect(await readdir(path.join(dir, 'apps/demo/meta'))).toEqual(['1.0.0.json']);

  server = await children.start(dir);
  expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  expect(await readdir(path.join(dir, 'apps/demo/releases'))).toEqual(['1.0.0']);
  expect(await snapshotApp(dir, 'demo')).toEqual(before);
  const audit = await readFile(path.join(dir, 'audit.log'), 'utf8');
  expect(audit.startsWith(auditBefore)).toBe(true);
  for (const line of audit.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();

  const status = await fetch(`${server.url}/v1/apps/demo`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(await status.json()).toMatchObject({ current: '1.0.0', previous: null, releases: [{ version: '1.0.0' }] });
  // The version the kill interrupted can be uploaded again.
  expect((await put(server.url, '2.0.0', await makeBundle(appFiles('demo@2.0.0')))).status).toBe(201);
});
