import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { deployVersion, testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const file = (version: string, rel: string) => path.join(server.dataDir, 'apps/demo/releases', version, rel);
const inode = async (version: string, rel: string) => (await stat(file(version, rel))).ino;

it('hard-links the files the current release already has, and writes the changed ones', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  const files = { ...appFiles('demo@1.0.0'), 'lib/util.js': 'exports.marker = "changed";\n', 'lib/new.js': 'exports.n = 1;\n' };
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(files))).statusCode).toBe(201);

  expect(await inode('2.0.0', 'package.json')).toBe(await inode('1.0.0', 'package.json'));
  expect(await inode('2.0.0', 'lib/util.js')).not.toBe(await inode('1.0.0', 'lib/util.js'));
  expect(await readFile(file('2.0.0', 'lib/util.js'), 'utf8')).toContain('changed');
  expect(await readFile(file('1.0.0', 'lib/util.js'), 'utf8')).toContain('demo@1.0.0');
  expect(await readFile(file('2.0.0', 'lib/new.js'), 'utf8')).toBe('exports.n = 1;\n');
  expect(await inode('2.0.0', 'index.js')).toBe(await inode('1.0.0', 'index.js'));
});

it('writes a file again when the current release\'s copy no longer matches its recorded size or mode', async () => {
  server = await testServer();
  await deployVersion(server.app, 'demo', '1.0.0');
  // Someone edited the stored release in place (its files.json still has the old hash).
  await writeFile(file('1.0.0', 'lib/util.js'), 'tampered, and longer than before\n');
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('demo@1.0.0')))).statusCode).toBe(201);
  expect(await readFile(file('2.0.0', 'lib/util.js'), 'utf8')).toBe('exports.marker = "demo@1.0.0";\n');
  expect(await inode('2.0.0', 'lib/util.js')).not.toBe(await inode('1.0.0', 'lib/util.js'));
  expect(await inode('2.0.0', 'package.json')).toBe(await inode('1.0.0', 'package.json'));
});

it('links nothing into a release of an app with no current release', async () => {
  server = await testServer();
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('x')), { query: '?activate=false' })).statusCode).toBe(201);
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(appFiles('x')), { query: '?activate=false' })).statusCode).toBe(201);
  expect((await stat(file('2.0.0', 'lib/util.js'))).nlink).toBe(1);
});

it('writes files whose bytes span the unpacker\'s blocks byte for byte, whether linked or written', async () => {
  server = await testServer();
  // 300-650 KB of random bytes each: ~3.8 MB of tar, so several files straddle the 1 MB blocks the
  // inflater hands to the writer, and the writer gives each block back before the next file ends.
  const data = (i: number) => randomBytes(300_000 + i * 50_000);
  const v1: Record<string, string | object> = { ...appFiles('demo@1.0.0') };
  for (let i = 0; i < 8; i++) v1[`data/f${i}.bin`] = data(i);
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(v1))).statusCode).toBe(201);
  // Half the files change: those are held whole until their hash says "not linkable", then written.
  const v2 = { ...v1 };
  for (let i = 0; i < 8; i += 2) v2[`data/f${i}.bin`] = data(i);
  expect((await upload(server.app, 'demo', '2.0.0', await makeBundle(v2))).statusCode).toBe(201);

  for (let i = 0; i < 8; i++) {
    const rel = `data/f${i}.bin`;
    expect((await readFile(file('2.0.0', rel))).equals(v2[rel] as Buffer), rel).toBe(true);
    if (i % 2 === 1) expect(await inode('2.0.0', rel)).toBe(await inode('1.0.0', rel));
    else expect(await inode('2.0.0', rel)).not.toBe(await inode('1.0.0', rel));
  }
});
