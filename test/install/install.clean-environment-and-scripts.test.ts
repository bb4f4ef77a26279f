import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeBundle } from '../helpers/bundles.js';
import { expectRejected, deployVersion, snapshotApp, testServer, upload, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { lockfileFor, OFFLINE_NPMRC, packIntoCache, type Packed } from './helpers.js';

// Install scripts run only where the app allows them, and npm (and every script) sees npm's own
// environment: never the service's variables.

let server: TestServer;
let work: { dir: string; cleanup: () => Promise<void> };
let spy: Packed;
const SECRET = 'HOTDEPLOY_TEST_SERVICE_SECRET';

function app(version: string, settings: object = {}): Record<string, string | object> {
  return {
    'package.json': { name: 'demo', version, main: 'index.js', hotdeploy: { port: 0, ...settings }, dependencies: { 'env-spy': '1.0.0' } },
    'package-lock.json': lockfileFor({ name: 'demo', version }, { 'env-spy': '1.0.0' }, [spy]),
    'index.js': `module.exports = (req, res) => res.end('demo@${version}');\n`,
  };
}

const seen = (version: string) => path.join(server.dataDir, 'apps/demo/releases', version, 'node_modules/env-spy/env.json');

beforeAll(async () => {
  process.env[SECRET] = 'do-not-leak';
  work = await tempDir('hotdeploy-install-env-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  server = await testServer({ npmrc });
  [spy] = await packIntoCache(work.dir, path.join(server.dataDir, 'npm', 'cache'), [{
    name: 'env-spy', version: '1.0.0',
    scripts: { postinstall: 'node -e "require(\'fs\').writeFileSync(\'env.json\', JSON.stringify(process.env))"' },
    files: { 'index.js': 'module.exports = 1;\n' },
  }]) as [Packed];
}, 60_000);

afterAll(async () => {
  delete process.env[SECRET];
  await server?.close();
  await work?.cleanup();
});

it('runs no install script by default', async () => {
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(app('1.0.0')));
  expect(res.statusCode, res.body).toBe(201);
  await expect(readFile(seen('1.0.0'))).rejects.toMatchObject({ code: 'ENOENT' });
});

it('runs them with hotdeploy.installScripts, in npm\'s environment only (no service secret, HOME in the data directory)', async () => {
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle(app('2.0.0', { installScripts: true })));
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json().release.install).toMatchObject({ how: 'npm ci', scripts: true });
  const env = JSON.parse(await readFile(seen('2.0.0'), 'utf8')) as Record<string, string>;
  expect(env[SECRET]).toBeUndefined();
  expect(Object.keys(env).filter((k) => k.startsWith('HOTDEPLOY_'))).toEqual([]);
  expect(env.HOME).toBe(path.join(server.dataDir, 'npm', 'home'));
  expect(env.npm_config_cache).toBe(path.join(server.dataDir, 'npm', 'cache'));
});

it('installs nothing for a bundle that carries its node_modules, whatever lockfile comes with it', async () => {
  const files = { ...app('3.0.0'), 'node_modules/env-spy/index.js': 'module.exports = 1;\n', 'node_modules/env-spy/package.json': { name: 'env-spy', version: '1.0.0' } };
  const res = await upload(server.app, 'demo', '3.0.0', await makeBundle(files));
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json().release.install).toBeUndefined();
  await expect(readFile(seen('3.0.0'))).rejects.toMatchObject({ code: 'ENOENT' });
});

it.each<[string, Record<string, string | object>, string]>([
  ['a yarn.lock and no node_modules (422 DEPLOY_ERR_LOCKFILE)', { 'yarn.lock': '# yarn lockfile v1\n' }, 'DEPLOY_ERR_LOCKFILE'],
  ['a pnpm-lock.yaml and no node_modules (422 DEPLOY_ERR_LOCKFILE)', { 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" }, 'DEPLOY_ERR_LOCKFILE'],
  ['its own .npmrc beside a lockfile (422 DEPLOY_ERR_INSTALL)', { 'package-lock.json': {}, '.npmrc': 'registry=https://example.invalid/\n' }, 'DEPLOY_ERR_INSTALL'],
  ['a lockfile that is not JSON (422 DEPLOY_ERR_INSTALL)', { 'package-lock.json': '{ nope' }, 'DEPLOY_ERR_INSTALL'],
])('refuses a bundle with %s; nothing changes', async (_name, extra, code) => {
  const other = await testServer();
  try {
    await deployVersion(other.app, 'demo', '1.0.0');
    const before = await snapshotApp(other.dataDir, 'demo');
    const files = { 'package.json': { name: 'demo', version: '2.0.0', hotdeploy: { port: 0 } }, 'index.js': 'module.exports = () => {};\n', ...extra };
    const res = await upload(other.app, 'demo', '2.0.0', await makeBundle(files));
    await expectRejected(other, before, res, 422, code);
    expect(res.json().message).toMatch(code === 'DEPLOY_ERR_LOCKFILE' ? /package-lock\.json.*bundleDependencies/ : /\.npmrc|JSON/);
  } finally {
    await other.close();
  }
});
