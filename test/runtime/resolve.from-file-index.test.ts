import { mkdir, readdir, realpath, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileIndex, type FileIndex } from '../../agent/runtime/file-index.js';
import { resolveRelative } from '../../agent/runtime/resolve.js';
import { cleanupStack, writeFilesManifest } from '../helpers/release.js';
import { writeTree } from '../helpers/tmp.js';

const t = cleanupStack();
afterEach(() => t.run());

const files: Record<string, string | object> = {
  'package.json': { name: 'app', version: '1.0.0', main: 'index.js' },
  'index.js': '',
  'a.js': '',
  // An exact name first, then `.js` before `.json`; `.json` alone is found too.
  'e': '', 'e.js': '',
  'b.js': '', 'b.json': '{}',
  'c.json': '{}',
  // `f.js` is a link (below), `f.json` a file: Node takes the link, which the index cannot follow.
  'f.json': '{}',
  'lib/index.js': '',
  'lib/util.js': '',
  'pkg-ext/package.json': { main: 'main.js' }, 'pkg-ext/main.js': '', 'pkg-ext/index.js': '',
  'pkg-noext/package.json': { main: 'main' }, 'pkg-noext/main.js': '',
  'pkg-dir/package.json': { main: './inner' }, 'pkg-dir/inner/index.js': '',
  'pkg-gone/package.json': { main: 'missing.js' }, 'pkg-gone/index.js': '',
  // `main` goes through a link: the index must not answer `index.js` in its place.
  'pkg-via-link/package.json': { main: 'ln/util.js' }, 'pkg-via-link/index.js': '',
  'sub/deep/x.js': '',
};

/** Symlinks of the release (path → target), all inside it, as the deploy service accepts them. */
const links: Record<string, string> = {
  'alias.js': 'a.js',
  'f.js': 'a.js',
  'linked-dir': 'lib',
  'pkg-via-link/ln': '../lib',
};

type Via = 'index' | 'disk';

/** [requiring file's directory, request, the file it resolves to (release-relative), who answers]. */
const cases: [string, string, string | undefined, Via][] = [
  ['', './a.js', 'a.js', 'index'],
  ['', './a', 'a.js', 'index'],
  ['', './e', 'e', 'index'],
  ['', './b', 'b.js', 'index'],
  ['', './c', 'c.json', 'index'],
  ['', './lib', 'lib/index.js', 'index'],
  ['', './lib/', 'lib/index.js', 'index'],
  ['sub', '../lib/util', 'lib/util.js', 'index'],
  ['', './pkg-ext', 'pkg-ext/main.js', 'index'],
  ['', './pkg-noext', 'pkg-noext/main.js', 'index'],
  ['', './pkg-dir', 'pkg-dir/inner/index.js', 'index'],
  ['', './pkg-gone', 'pkg-gone/index.js', 'index'],
  ['lib', '..', 'index.js', 'index'],
  ['', '.', 'index.js', 'index'],
  ['sub/deep', '../../a', 'a.js', 'index'],
  ['', './alias', 'a.js', 'disk'],
  ['', './alias.js', 'a.js', 'disk'],
  ['', './f', 'a.js', 'disk'],
  ['', './linked-dir', 'lib/index.js', 'disk'],
  ['', './linked-dir/util', 'lib/util.js', 'disk'],
  ['', './pkg-via-link', 'lib/util.js', 'disk'],
  ['', './.hotdeploy/files.json', '.hotdeploy/files.json', 'disk'],
  ['sub', '../../outside', '../outside.js', 'disk'],
  ['', './nope', undefined, 'disk'],
  ['', './nope/', undefined, 'disk'],
  ['', './a.js/', undefined, 'disk'],
];

/** A release under a fresh root (canonical, as the runtime realpaths it), and a file beside it. */
async function release(manifest: 'with links' | 'without links' | 'none'): Promise<string> {
  const root = await realpath(await t.root());
  const dir = path.join(root, 'release');
  await writeTree(dir, files);
  await writeTree(root, { 'outside.js': '' });
  for (const [at, target] of Object.entries(links)) await symlink(target, path.join(dir, at));
  await mkdir(path.join(dir, '.hotdeploy'), { recursive: true });
  if (manifest !== 'none') await writeFilesManifest(dir, {}, { links: manifest === 'with links' });
  else await writeTree(dir, { '.hotdeploy/files.json': 'written by someone else' });
  return dir;
}

/** What Node itself answers (its own caches are the test process's). */
function nodeResolves(fromDir: string, request: string): string | undefined {
  try {
    return createRequire(path.join(fromDir, 'requirer.js')).resolve(request);
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('MODULE_NOT_FOUND');
    return undefined;
  }
}

/** Every regular file under `root` goes, but package.json files (read for `main`): links now dangle. */
async function removeFiles(root: string): Promise<void> {
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name !== 'package.json') await rm(path.join(entry.parentPath, entry.name));
  }
}

describe.each([
  ['a files.json that lists links', 'with links' as const],
  ['the listing fallback (no usable files.json)', 'none' as const],
])('resolving relative requests from %s', (_name, manifest) => {
  it('gives what the syscalls and Node give, answering from the index where it can', async () => {
    const dir = await release(manifest);
    const index = readFileIndex(dir);
    expect(index.links).toEqual(new Set(Object.keys(links)));
    const expected = (rel: string | undefined): string | undefined => (rel === undefined ? undefined : path.resolve(dir, rel));
    for (const [from, request, rel] of cases) {
      const fromDir = path.join(dir, from);
      const answer = resolveRelative(fromDir, request, index);
      expect({ from, request, answer }).toEqual({ from, request, answer: expected(rel) });
      expect(resolveRelative(fromDir, request)).toBe(answer);
      expect(nodeResolves(fromDir, request)).toBe(answer);
    }

    // With the files gone from the disk, the index still answers what it answered: it never asked
    // the disk. What fell back to the disk finds nothing now.
    await removeFiles(path.dirname(dir));
    for (const [from, request, rel, via] of cases) {
      const fromDir = path.join(dir, from);
      expect(resolveRelative(fromDir, request)).toBeUndefined();
      const answer = resolveRelative(fromDir, request, index);
      expect({ from, request, answer }).toEqual({ from, request, answer: via === 'index' ? expected(rel) : undefined });
    }
  });
});

it('takes no answer from a files.json without links (written before links were listed)', async () => {
  const dir = await release('without links');
  const index: FileIndex = readFileIndex(dir);
  expect(index).toMatchObject({ fromManifest: true, links: undefined });
  await removeFiles(path.dirname(dir));
  for (const [from, request] of cases) {
    const fromDir = path.join(dir, from);
    expect({ from, request, answer: resolveRelative(fromDir, request, index) }).toEqual({ from, request, answer: resolveRelative(fromDir, request) });
  }
  expect(resolveRelative(dir, './a', index)).toBeUndefined();
});

it('falls back to the disk for a file the app wrote into its release after the index was read', async () => {
  const dir = await release('with links');
  const index = readFileIndex(dir);
  await writeTree(dir, { 'late.js': '' });
  expect(resolveRelative(dir, './late', index)).toBe(path.join(dir, 'late.js'));
});

it('answers nothing for a request that leaves the release directory the index is of', async () => {
  const dir = await release('with links');
  const other = await release('with links');
  const index = readFileIndex(other);
  expect(resolveRelative(dir, './a', index)).toBe(path.join(dir, 'a.js'));
  await removeFiles(path.dirname(dir));
  expect(resolveRelative(dir, './a', index)).toBeUndefined();
});
