import { afterEach, expect, it } from 'vitest';
import { rawTgz } from '../helpers/bundles.js';
import { inProcessHost, type InProcessHost } from '../helpers/in-process-host.js';
import { serve } from '../helpers/release.js';
import { testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
let host: InProcessHost;
let http: { get: () => Promise<string>; close: () => Promise<void> } | undefined;
afterEach(async () => {
  await http?.close();
  await host.close();
  await server.close();
});

/**
 * An app whose requires go to plain files (answered from the release's file index) and through
 * symlinks the bundle brings (a file and a folder: answered by the disk).
 */
function bundle(marker: string): Buffer {
  return rawTgz([
    { path: 'package/package.json', body: JSON.stringify({ name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } }) },
    {
      path: 'package/index.js',
      body: `const util = require('./lib/util');
const alias = require('./lib/alias');
const viaDir = require('./linked');
module.exports = (req, res) => res.end(JSON.stringify([util.marker, alias.marker, viaDir.marker, alias === util && viaDir === util]));
`,
    },
    { path: 'package/lib/util.js', body: `exports.marker = ${JSON.stringify(marker)};\n` },
    { path: 'package/lib/index.js', body: "module.exports = require('./util');\n" },
    { path: 'package/lib/alias.js', type: 'SymbolicLink', linkpath: 'util.js' },
    { path: 'package/linked', type: 'SymbolicLink', linkpath: 'lib' },
  ]);
}

it('hot-updates an app stored by the upload path, resolving its files and its symlinks as Node does', async () => {
  host = inProcessHost('h1');
  server = await testServer({ agents: [host] });
  const first = await upload(server.app, 'demo', '1.0.0', bundle('v1'));
  expect(first.statusCode, first.body).toBe(201);
  const hosted = host.hosted('demo');
  if (!hosted) throw new Error('the app did not start');
  http = await serve(hosted.handler);
  expect(await http.get()).toBe('200 ["v1","v1","v1",true]');

  for (const version of ['2.0.0', '3.0.0']) {
    const res = await upload(server.app, 'demo', version, bundle(`v${version[0]}`));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().deployment).toMatchObject({ status: 'succeeded', workers: [{ outcome: 'hot', version }] });
    expect(res.json().deployment.workers[0].update).toMatchObject({ outdated: ['lib/util.js'], disposed: ['index.js', 'lib/index.js', 'lib/util.js'] });
    expect(host.hosted('demo')).toBe(hosted);
    expect(await http.get()).toBe(`200 ["v${version[0]}","v${version[0]}","v${version[0]}",true]`);
  }
});
