import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../services/cli/client.js';
import { push } from '../../services/cli/commands/push.js';
import { startServer, type RunningServer } from '../../services/server/index.js';
import { captureIo } from '../cli/helpers.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { lockfileFor, OFFLINE_NPMRC, packIntoCache } from './helpers.js';

// `hotdeploy push <dir>` of an app whose node_modules stay on the developer's machine: the CLI adds
// the lockfile npm pack leaves out, and the service installs from it.

const TOKEN = 'install-push-token-0123456789';
let work: { dir: string; cleanup: () => Promise<void> };
let server: RunningServer;

beforeAll(async () => {
  work = await tempDir('hotdeploy-install-push-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  const dataDir = path.join(work.dir, 'data');
  server = await startServer({ dataDir, port: 0, localAgent: false, tokens: [{ name: 'ci', token: TOKEN }], logger: false, npmrc });
  const [tiny] = await packIntoCache(work.dir, path.join(dataDir, 'npm', 'cache'), [
    { name: 'tiny-a', version: '1.0.0', files: { 'index.js': "module.exports = () => 'a';\n" } },
  ]);
  await writeTree(path.join(work.dir, 'app'), {
    'package.json': { name: 'shop', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 }, dependencies: { 'tiny-a': '^1.0.0' } },
    'package-lock.json': lockfileFor({ name: 'shop', version: '1.0.0' }, { 'tiny-a': '^1.0.0' }, [tiny!]),
    '.npmrc': '//registry.npmjs.org/:_authToken=never-sent\n',
    'index.js': "module.exports = (req, res) => res.end(require('tiny-a')());\n",
    // The developer's own install: npm pack leaves it out.
    'node_modules/tiny-a/index.js': "module.exports = () => 'local';\n",
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await work?.cleanup();
});

it('installs on the first push, links on the next, and says which', async () => {
  const client = new Client(server.url, TOKEN);
  const first = captureIo();
  expect(await push(client, { source: path.join(work.dir, 'app'), app: 'shop' }, first.io), first.err()).toBe(0);
  expect(first.err()).toMatch(/pushing shop@1\.0\.0 as a full bundle \(.*with package-lock\.json\)/);
  expect(first.out()).toMatch(/dependencies: 2 files in node_modules \(npm ci, [\d.]+ s\)/);

  await writeFile(path.join(work.dir, 'app', 'index.js'), "module.exports = (req, res) => res.end('v2 ' + require('tiny-a')());\n");
  const second = captureIo();
  expect(await push(client, { source: path.join(work.dir, 'app'), app: 'shop', version: '1.0.1' }, second.io), second.err()).toBe(0);
  expect(second.out()).toMatch(/dependencies: 2 files in node_modules \(linked from 1\.0\.0, same lockfile\)/);
  // The delta is the sources' only: the installed node_modules are the host's, neither sent nor removed.
  expect(second.err()).toMatch(/pushing shop@1\.0\.1 as a delta against 1\.0\.0: 1 changed, 0 removed/);
});
