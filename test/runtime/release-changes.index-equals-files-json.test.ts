import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { readFileIndex, type FileIndex } from '../../agent/runtime/file-index.js';
import { indexFromChanges } from '../../agent/runtime/release-changes.js';
import { cleanupStack } from '../helpers/release.js';
import { serviceReleases } from '../helpers/service-releases.js';

const t = cleanupStack();
afterEach(t.run);

const v1 = {
  'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } },
  'index.js': 'module.exports = (req, res) => res.end("1");\n',
  'lib/a.js': 'exports.a = 1;\n',
  'lib/gone.js': 'exports.gone = 1;\n',
  'views/page.html': 'p1',
};
const v2 = { ...v1, 'lib/gone.js': undefined, 'lib/a.js': 'exports.a = 2;\n', 'lib/new.js': 'exports.n = 1;\n' };
const v3 = { ...v2, 'views/page.html': 'p3', 'lib/new.js': undefined };
const tree = (files: Record<string, string | object | undefined>) =>
  Object.fromEntries(Object.entries(files).filter((e): e is [string, string | object] => e[1] !== undefined));

const plain = (index: FileIndex) => ({ dir: index.dir, fromManifest: index.fromManifest, files: index.files, links: index.links, manifestSha256: index.manifestSha256 });

it('rebuilds, release after release, exactly the index files.json gives (files, links, identity)', async () => {
  const releases = await serviceReleases(await t.root(), [tree(v1), tree(v2), tree(v3)]);
  let index = readFileIndex(path.join(releases, '1.0.0'));
  for (const version of ['2.0.0', '3.0.0']) {
    const delta = indexFromChanges(index, path.join(releases, version));
    expect(delta).toBeDefined();
    expect(plain(delta!.index)).toEqual(plain(readFileIndex(path.join(releases, version))));
    index = delta!.index;
  }
  expect(index.files.has('lib/new.js')).toBe(false);
  expect(index.links).toEqual(new Set());
});
