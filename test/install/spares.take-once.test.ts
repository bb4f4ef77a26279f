import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Spares } from '../../services/server/install/spares.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

it('links a spare in the background, gives it to one upload only, and drops it when no release has its install', async () => {
  const { dir, cleanup } = await tempDir('hotdeploy-spares-');
  cleanups.push(cleanup);
  const release = path.join(dir, 'release');
  await writeTree(release, { 'node_modules/a/index.js': 'a', 'node_modules/a/lib/b.js': 'b' });
  const tree = { files: { 'node_modules/a/index.js': 'h1', 'node_modules/a/lib/b.js': 'h2' }, links: [] };
  const spares = new Spares(path.join(dir, 'spares'));
  spares.prepare('shop', 'k1', { version: '1.0.0', dir: release }, tree);

  const root = path.join(dir, 'staged');
  await writeTree(root, { 'package.json': '{}' });
  // Taken while it may still be linking: the upload waits for it.
  expect(await spares.take('shop', 'k1', root)).toEqual({ tree, from: '1.0.0' });
  expect(await readFile(path.join(root, 'node_modules/a/lib/b.js'), 'utf8')).toBe('b');
  expect((await stat(path.join(root, 'node_modules/a/index.js'))).ino).toBe((await stat(path.join(release, 'node_modules/a/index.js'))).ino);
  expect(await spares.take('shop', 'k1', path.join(dir, 'other'))).toBeUndefined();
  expect(await spares.take('shop', 'k2', path.join(dir, 'other'))).toBeUndefined();

  spares.prepare('shop', 'k1', { version: '1.0.0', dir: release }, tree);
  await spares.drop('shop', (key) => key !== 'k1');
  expect(await readdir(path.join(dir, 'spares', 'shop'))).toEqual([]);
});
