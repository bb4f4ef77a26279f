import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readManifest } from '../agent/manifest.js';
import { tempDir, writeTree } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('readManifest', () => {
  it('defaults to handler mode and the main entry', async () => {
    await writeTree(dir, { 'package.json': { name: 'a', version: '1.0.0', main: 'server' }, 'server/index.js': '' });
    const m = await readManifest(dir);
    expect(m).toMatchObject({ name: 'a', version: '1.0.0', entry: 'server/index.js', mode: 'handler', esm: false });
  });

  it('lets hotdeploy.json override package.json settings', async () => {
    await writeTree(dir, {
      'package.json': { hotdeploy: { mode: 'handler', port: 3000, entry: 'a.js' } },
      'hotdeploy.json': { mode: 'process', instances: 3 },
      'a.js': '',
    });
    expect(await readManifest(dir)).toMatchObject({ entry: 'a.js', mode: 'process', port: 3000, instances: 3 });
  });

  it('marks ESM apps', async () => {
    await writeTree(dir, { 'package.json': { type: 'module' }, 'index.js': '' });
    expect((await readManifest(dir)).esm).toBe(true);
  });

  it.each([
    ['no package.json', {}, 'HOT_ERR_MANIFEST'],
    ['package.json not JSON', { 'package.json': '{nope' }, 'HOT_ERR_MANIFEST'],
    ['package.json an array', { 'package.json': '[]' }, 'HOT_ERR_MANIFEST'],
    ['missing entry', { 'package.json': { main: 'gone.js' } }, 'HOT_ERR_ENTRY'],
    ['entry outside the release', { 'package.json': { main: '../x.js' } }, 'HOT_ERR_ENTRY'],
    ['bad mode', { 'package.json': { hotdeploy: { mode: 'fork' } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
    ['bad port', { 'package.json': { hotdeploy: { port: 70000 } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
    ['bad env', { 'package.json': { hotdeploy: { env: { A: 1 } } }, 'index.js': '' }, 'HOT_ERR_SETTINGS'],
  ])('rejects %s with a stable code', async (_name, files, code) => {
    await writeTree(dir, files as Record<string, string | object>);
    await expect(readManifest(dir)).rejects.toMatchObject({ code });
  });
});
