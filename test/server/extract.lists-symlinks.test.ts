import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it("lists the release's symlinks in files.json, under the stripped root, and not a link a later entry replaced", async () => {
  server = await testServer();
  const body = rawTgz([
    ...rawApp('v1', 'package/'),
    { path: 'package/lib/alias.js', type: 'SymbolicLink', linkpath: 'util.js' },
    { path: 'package/linked', type: 'SymbolicLink', linkpath: 'lib' },
    { path: 'package/lib/was-a-link.js', type: 'SymbolicLink', linkpath: 'util.js' },
    { path: 'package/lib/was-a-link.js', body: 'exports.now = "a file";\n' },
  ]);
  const res = await upload(server.app, 'demo', '1.0.0', body);
  expect(res.statusCode, res.body).toBe(201);
  const hashes = JSON.parse(await readFile(path.join(server.dataDir, 'apps/demo/releases/1.0.0/.hotdeploy/files.json'), 'utf8'));
  expect(hashes.links).toEqual(['lib/alias.js', 'linked']);
  expect(Object.keys(hashes.files).sort()).toEqual(['index.js', 'lib/util.js', 'lib/was-a-link.js', 'package.json']);
});
