import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';
import { writeTree } from '../helpers/tmp.js';

let server: TestServer;
afterEach(() => server.close());

it.each([
  ['an absolute target', 'secret', '/etc/passwd'],
  ['a relative target climbing out', 'lib/secret', '../../outside'],
])('rejects a symlink with %s, and writes nothing through it', async (_name, linkPath, target) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const sentinel = path.join(server.dataDir, 'sentinel.txt');
  await writeTree(server.dataDir, { 'sentinel.txt': 'untouched' });
  const body = rawTgz([...rawApp('v2'), { path: linkPath, type: 'SymbolicLink', linkpath: target },
    { path: `${linkPath}/pwn.txt`, body: 'pwned' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_LINK_ESCAPE');
  expect(await readFile(sentinel, 'utf8')).toBe('untouched');
});

it.each([
  // package/lib/up -> ../.. is package/.. inside the archive, but outside the release once package/ is stripped.
  ['only escapes once the single top-level folder is stripped', 'package/lib/up', '../..'],
  // package/a -> ../package/lib reads package/lib inside the archive, but once package/ is the release it is <releases>/package/lib.
  ['climbs out of the top-level folder and back in', 'package/a', '../package/lib'],
])('rejects a link that %s', async (_name, linkPath, target) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2', 'package/'), { path: linkPath, type: 'SymbolicLink', linkpath: target }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_LINK_ESCAPE');
});

it('rejects an entry written through a symlink inside the archive', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/dir', type: 'SymbolicLink', linkpath: '.' }, { path: 'lib/dir/x.js', body: 'x' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_LINK_ESCAPE');
});

it('accepts a symlink that stays inside the release', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/alias.js', type: 'SymbolicLink', linkpath: 'util.js' }]);
  const res = await upload(server.app, 'demo', '2.0.0', body);
  expect(res.statusCode, res.body).toBe(201);
  expect(await readFile(path.join(server.dataDir, 'apps/demo/releases/2.0.0/lib/alias.js'), 'utf8')).toContain('v2');
});

it('rejects a link whose .. climbs out through another link, and reads nothing through it', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  // d1/d2/d3/top -> ../../.. is the release itself; `d1/d2/d3/top/../../..` reads as d1 on paper, but the
  // kernel follows `top` first: the release's ../../.. — while it is staged, the data directory.
  await writeTree(server.dataDir, { 'outside.json': { name: 'demo', version: '6.6.6', main: 'index.js', hotdeploy: { port: 0 } } });
  const body = rawTgz([...rawApp('v2').filter((e) => e.path !== 'package.json'),
    { path: 'd1/d2/d3/top', type: 'SymbolicLink', linkpath: '../../..' },
    { path: 'package.json', type: 'SymbolicLink', linkpath: 'd1/d2/d3/top/../../../outside.json' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_LINK_ESCAPE');
});

it('accepts links through links that stay inside the release', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'd1/d2/up', type: 'SymbolicLink', linkpath: '..' },
    { path: 'alias.js', type: 'SymbolicLink', linkpath: 'd1/d2/up/../lib/util.js' }]);
  const res = await upload(server.app, 'demo', '2.0.0', body);
  expect(res.statusCode, res.body).toBe(201);
  expect(await readFile(path.join(server.dataDir, 'apps/demo/releases/2.0.0/alias.js'), 'utf8')).toContain('v2');
});
