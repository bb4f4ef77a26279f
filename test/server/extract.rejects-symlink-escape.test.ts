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

it('rejects a link that only escapes once the single top-level folder is stripped', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  // package/lib/up -> ../.. is package/.. inside the archive, but outside the release once package/ is stripped.
  const body = rawTgz([...rawApp('v2', 'package/'), { path: 'package/lib/up', type: 'SymbolicLink', linkpath: '../..' }]);
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
