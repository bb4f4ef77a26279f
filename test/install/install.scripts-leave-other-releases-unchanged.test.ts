import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { makeBundle } from '../helpers/bundles.js';
import { uploadDelta } from '../helpers/deltas.js';
import { snapshotApp, testServer, TOKENS, upload, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { lockfileFor, OFFLINE_NPMRC } from './helpers.js';

// A new release's files are hard links to the current release's copies where the bytes are the
// same: an install script that rewrites a file of the bundle in place rewrites the new release's own copy only.

let server: TestServer;
let work: { dir: string; cleanup: () => Promise<void> };
afterEach(async () => {
  await server.close();
  await work.cleanup();
});

/**
 * An app whose postinstall rewrites in place a file it also ships (the same size before and after).
 * Each version's package.json differs in a dependency field, so each is installed by `npm ci` (not linked).
 */
function app(version: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({
      name: 'demo', version, main: 'index.js', hotdeploy: { port: 0, installScripts: true }, optionalDependencies: version === '1.0.0' ? undefined : {},
      scripts: { postinstall: 'node -e "require(\'fs\').writeFileSync(\'built.txt\', \'built for \' + process.env.npm_package_version)"' },
    }),
    'package-lock.json': JSON.stringify(lockfileFor({ name: 'demo', version }, {}, [])),
    'built.txt': 'built for 0.0.0',
    'index.js': `module.exports = (req, res) => res.end('demo@${version}');\n`,
  };
}

const releaseFile = (version: string, rel: string) => path.join(server.dataDir, 'apps/demo/releases', version, rel);
const filesOf = (snapshot: Record<string, string>, version: string) =>
  Object.fromEntries(Object.entries(snapshot).filter(([rel]) => rel.startsWith(`releases/${version}/`)));

/** A server (installing offline) with demo@1.0.0 current, built by its own postinstall; its snapshot. */
async function withCurrent(): Promise<Record<string, string>> {
  work = await tempDir('hotdeploy-install-inplace-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  server = await testServer({ npmrc });
  expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(app('1.0.0')))).statusCode).toBe(201);
  expect(await readFile(releaseFile('1.0.0', 'built.txt'), 'utf8')).toBe('built for 1.0.0');
  return snapshotApp(server.dataDir, 'demo');
}

it.each(['a full bundle', 'a delta'])('leaves the current release\'s files as they were when the install scripts of %s rewrite a file both ship', async (how) => {
  const before = await withCurrent();

  const { 'built.txt': _kept, ...changed } = app('2.0.0');
  const res = how === 'a full bundle'
    ? await upload(server.app, 'demo', '2.0.0', await makeBundle(app('2.0.0')))
    : await uploadDelta(server.app, 'demo', '2.0.0', { base: '1.0.0', changed });
  expect(res.statusCode, res.body).toBe(201);
  expect(await readFile(releaseFile('2.0.0', 'built.txt'), 'utf8')).toBe('built for 2.0.0');
  expect(await readFile(releaseFile('1.0.0', 'built.txt'), 'utf8')).toBe('built for 1.0.0');
  expect(filesOf(await snapshotApp(server.dataDir, 'demo'), '1.0.0')).toEqual(filesOf(before, '1.0.0'));
});

it('leaves them as they were on a dry run too (`POST …/plan` installs as an upload does)', async () => {
  const before = await withCurrent();
  const res = await server.app.inject({ method: 'POST', url: '/v1/apps/demo/plan', payload: await makeBundle(app('2.0.0')),
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip' } });
  expect(res.statusCode, res.body).toBe(200);
  expect(await snapshotApp(server.dataDir, 'demo')).toEqual(before);
});

it('gives a later release the bytes it uploaded, not a copy an install script rewrote', async () => {
  await withCurrent();
  // 2.0.0 ships the same built.txt as 1.0.0 uploaded ('built for 0.0.0') and runs no scripts:
  // 1.0.0's copy on disk was rewritten by its postinstall, so it must not be linked as those bytes.
  const files = app('2.0.0');
  const pkg = JSON.parse(files['package.json'] as string) as { hotdeploy: Record<string, unknown>; scripts?: unknown };
  delete pkg.scripts;
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle({ ...files, 'package.json': JSON.stringify({ ...pkg, hotdeploy: { port: 0 } }) }));
  expect(res.statusCode, res.body).toBe(201);
  expect(await readFile(releaseFile('2.0.0', 'built.txt'), 'utf8')).toBe('built for 0.0.0');
});

it('runs the app\'s own install scripts on every release with them: their output is never linked from another release', async () => {
  work = await tempDir('hotdeploy-install-own-scripts-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  server = await testServer({ npmrc });
  // The same package.json and lockfile in every version: only the file the postinstall reads changes.
  const files = (source: string): Record<string, string> => ({
    'package.json': JSON.stringify({
      name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0, installScripts: true },
      scripts: { postinstall: 'node -e "require(\'fs\').writeFileSync(\'built.txt\', \'built from \' + require(\'fs\').readFileSync(\'source.txt\', \'utf8\'))"' },
    }),
    'package-lock.json': JSON.stringify(lockfileFor({ name: 'demo', version: '1.0.0' }, {}, [])),
    'source.txt': source,
    'index.js': 'module.exports = (req, res) => res.end(require(\'fs\').readFileSync(__dirname + \'/built.txt\'));\n',
  });
  const push = async (version: string, source: string) => {
    const res = await upload(server.app, 'demo', version, await makeBundle(files(source)));
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { release: { install: { how: string; from?: string; key: string; ownScripts?: true } } }).release.install;
  };
  const first = await push('1', 'one');
  const second = await push('2', 'two');
  expect(second).toMatchObject({ how: 'npm ci', ownScripts: true });
  expect(second.key).not.toBe(first.key);
  expect(await readFile(releaseFile('2', 'built.txt'), 'utf8')).toBe('built from two');
  // The same files again: linked node_modules would leave out what the script wrote beside them.
  expect(await push('3', 'two')).toMatchObject({ how: 'npm ci', key: second.key });
  expect(await readFile(releaseFile('3', 'built.txt'), 'utf8')).toBe('built from two');
  expect(await readFile(releaseFile('1', 'built.txt'), 'utf8')).toBe('built from one');
});
