import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeFilesManifest, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

// An update skips reading the new release's manifest only when its inputs are byte-identical and
// no path appeared or went (plan.ts, manifestUnchanged). Each case keeps the set of paths and
// changes only what decides the entry, so the new entry shows only if the manifest was read.
const handler = (text: string): string => `module.exports = (req, res) => res.end(${JSON.stringify(text)});\n`;
const code = { 'a.js': handler('from a'), 'b.js': handler('from b') };

describe.each([
  ['with the deploy service\'s file index', true],
  ['with the listing fallback', false],
])('the entry %s', (_name, manifest) => {
  const release = async (root: string, files: Record<string, string | object>, link?: string): Promise<string> => {
    const dir = await writeRelease(root, files);
    if (link) await symlink(link, path.join(dir, 'hotdeploy.json'));
    if (manifest) await writeFilesManifest(dir);
    return dir;
  };

  const moves = async (v1: string, v2: string): Promise<void> => {
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 from a');
    expect(await app.update(v2)).toMatchObject({ outcome: 'hot', accepted: ['b.js'] });
    expect(await server.get()).toBe('200 from b');
  };

  it('moves when package.json\'s main changes', async () => {
    const root = await t.root();
    await moves(
      await release(root, { ...code, 'package.json': { name: 'app', main: 'a.js' } }),
      await release(root, { ...code, 'package.json': { name: 'app', main: 'b.js' } }),
    );
  });

  it('moves when hotdeploy.json\'s entry changes', async () => {
    const root = await t.root();
    await moves(
      await release(root, { ...code, 'hotdeploy.json': { entry: 'a.js' } }),
      await release(root, { ...code, 'hotdeploy.json': { entry: 'b.js' } }),
    );
  });

  it('moves when hotdeploy.json is a link (which no file index lists) to another file', async () => {
    const root = await t.root();
    const conf = { 'conf/a.json': { entry: 'a.js' }, 'conf/b.json': { entry: 'b.js' } };
    await moves(
      await release(root, { ...code, ...conf }, 'conf/a.json'),
      await release(root, { ...code, ...conf }, 'conf/b.json'),
    );
  });
});
