import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { gitVersion, prepareBundle, resolveVersion } from '../../services/cli/pack.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

const execFileAsync = promisify(execFile);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function scratch(): Promise<string> {
  const { dir, cleanup } = await tempDir('hotdeploy-pack-');
  cleanups.push(cleanup);
  return dir;
}

async function entriesOf(file: string): Promise<string[]> {
  const entries: string[] = [];
  await tar.t({ file, onReadEntry: (entry) => entries.push(entry.path) });
  return entries.sort();
}

async function readEntry(file: string, wanted: string): Promise<string> {
  let text = '';
  await tar.t({ file, filter: (p) => p === wanted, onReadEntry: (entry) => entry.on('data', (c: Buffer) => { text += c.toString(); }) });
  return text;
}

async function packed(dir: string): Promise<string[]> {
  const bundle = await prepareBundle(dir);
  cleanups.push(bundle.cleanup);
  return entriesOf(bundle.file);
}

describe('packing a directory the way npm pack does', () => {
  it('keeps only package.json "files", never .git', async () => {
    const dir = await scratch();
    await writeTree(dir, {
      'package.json': { name: 'app', version: '1.2.3', files: ['index.js', 'lib'] },
      'index.js': 'module.exports = () => {};',
      'lib/util.js': 'exports.x = 1;',
      'secret.env': 'TOKEN=1',
      'test/a.test.js': '',
      '.git/HEAD': 'ref: refs/heads/main',
    });
    expect(await packed(dir)).toEqual(['package/index.js', 'package/lib/util.js', 'package/package.json']);
  });

  it('honours .npmignore, and .gitignore when there is no .npmignore', async () => {
    const withNpmignore = await scratch();
    await writeTree(withNpmignore, {
      'package.json': { name: 'app', version: '1.0.0' },
      'index.js': '',
      'fixtures/big.bin': 'x',
      '.npmignore': 'fixtures/\n',
      '.gitignore': 'index.js\n',
    });
    expect(await packed(withNpmignore)).toEqual(['package/index.js', 'package/package.json']);

    const withGitignore = await scratch();
    await writeTree(withGitignore, {
      'package.json': { name: 'app', version: '1.0.0' },
      'index.js': '',
      'coverage/lcov.info': '',
      '.gitignore': 'coverage/\n',
    });
    expect(await packed(withGitignore)).toEqual(['package/index.js', 'package/package.json']);
  });

  it('reports the sha256 of the bytes it will send and package.json\'s version', async () => {
    const dir = await scratch();
    await writeTree(dir, { 'package.json': { name: 'app', version: '4.5.6' }, 'index.js': '' });
    const bundle = await prepareBundle(dir);
    cleanups.push(bundle.cleanup);
    const bytes = await readFile(bundle.file);
    expect(bundle.size).toBe(bytes.length);
    expect(bundle.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(await resolveVersion(undefined, dir, bundle)).toBe('4.5.6');
    expect(await resolveVersion('7', dir, bundle)).toBe('7');
  });

  it('adds package-lock.json (npm pack leaves it out) so the service can install, and never .npmrc', async () => {
    const dir = await scratch();
    await writeTree(dir, {
      'package.json': { name: 'app', version: '1.0.0', dependencies: { 'tiny-a': '^1.0.0' } },
      'package-lock.json': { name: 'app', version: '1.0.0', lockfileVersion: 3, packages: {} },
      '.npmrc': '//registry.npmjs.org/:_authToken=secret\n',
      'index.js': '',
      'node_modules/tiny-a/index.js': '',
    });
    const bundle = await prepareBundle(dir);
    cleanups.push(bundle.cleanup);
    expect(bundle.lockfile).toBe('package-lock.json');
    expect(await entriesOf(bundle.file)).toEqual(['package/index.js', 'package/package-lock.json', 'package/package.json']);
    const lock = await readEntry(bundle.file, 'package/package-lock.json');
    expect(lock).toBe(await readFile(path.join(dir, 'package-lock.json'), 'utf8'));
    // The same directory packs to the same bytes (an unchanged re-push is idempotent).
    const again = await prepareBundle(dir);
    cleanups.push(again.cleanup);
    expect(again.sha256).toBe(bundle.sha256);
  });

  it('adds no lockfile when the pack carries node_modules (bundleDependencies), and sends a yarn.lock so the service can say what it installs from', async () => {
    const bundled = await scratch();
    await writeTree(bundled, {
      'package.json': { name: 'app', version: '1.0.0', dependencies: { 'tiny-a': '1.0.0' }, bundleDependencies: ['tiny-a'] },
      'package-lock.json': { lockfileVersion: 3 },
      'index.js': '',
      'node_modules/tiny-a/package.json': { name: 'tiny-a', version: '1.0.0' },
    });
    expect(await packed(bundled)).toEqual(['package/index.js', 'package/node_modules/tiny-a/package.json', 'package/package.json']);
    const yarn = await scratch();
    await writeTree(yarn, { 'package.json': { name: 'app', version: '1.0.0' }, 'yarn.lock': '# yarn lockfile v1\n', 'index.js': '' });
    expect(await packed(yarn)).toEqual(['package/index.js', 'package/package.json', 'package/yarn.lock']);
  });

  it('fails with CLI_ERR_PACK, npm\'s reason and no leftovers when npm cannot pack', async () => {
    const dir = await scratch();
    await writeTree(dir, { 'package.json': { name: 'app' }, 'index.js': '' });
    await expect(prepareBundle(dir)).rejects.toMatchObject({ code: 'CLI_ERR_PACK', message: /name and version/ });
  });

  it('refuses a directory without its own package.json with CLI_ERR_SOURCE', async () => {
    const dir = await scratch();
    await writeTree(dir, { 'package.json': { name: 'outer', version: '1.0.0' }, 'dist/index.js': '' });
    await expect(prepareBundle(path.join(dir, 'dist'))).rejects.toMatchObject({ code: 'CLI_ERR_SOURCE', message: /no package\.json/ });
  });

  it('rejects a source that does not exist with CLI_ERR_SOURCE', async () => {
    const dir = await scratch();
    await expect(prepareBundle(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'CLI_ERR_SOURCE' });
  });
});

describe('a given .tgz', () => {
  it('is sent as is, its version read from package/package.json inside', async () => {
    const dir = await scratch();
    await writeTree(dir, { 'package/package.json': { name: 'app', version: '9.9.9' }, 'package/index.js': '' });
    const file = path.join(dir, 'app.tgz');
    await tar.c({ gzip: true, file, cwd: dir }, ['package']);
    const bundle = await prepareBundle(file);
    expect(bundle.file).toBe(file);
    expect(bundle.packageVersion).toBe('9.9.9');
    expect(bundle.sha256).toBe(createHash('sha256').update(await readFile(file)).digest('hex'));
  });
});

describe('--version git', () => {
  it('prefers the CI\'s commit variables', async () => {
    const dir = await scratch();
    expect(await gitVersion(dir, { CI_COMMIT_SHORT_SHA: 'a1b2c3d4' })).toBe('a1b2c3d4');
    expect(await gitVersion(dir, { GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567' })).toBe('0123456');
  });

  it('asks git for the short commit, and says so when there is none', async () => {
    const dir = await scratch();
    await expect(gitVersion(dir, {})).rejects.toMatchObject({ code: 'CLI_ERR_VERSION' });
    const git = (...args: string[]) => execFileAsync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir });
    await git('init', '-q');
    await writeTree(dir, { 'a.txt': 'a' });
    await git('add', '.');
    await git('commit', '-qm', 'a');
    const { stdout } = await git('rev-parse', '--short', 'HEAD');
    expect(await gitVersion(dir, {})).toBe(stdout.trim());
  });
});

describe('the in-process pack list (push without --npm-pack) is npm pack\'s', () => {
  async function npmPackList(dir: string): Promise<string[]> {
    const { stdout } = await execFileAsync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, env: { ...process.env, npm_config_loglevel: 'error' } });
    return (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path).sort();
  }

  const layouts: Array<[string, Record<string, string | object>]> = [
    ['an express-generator app with a .gitignore and installed (unbundled) dependencies', {
      'package.json': { name: 'web', version: '0.0.0', private: true, scripts: { start: 'node ./bin/www' }, dependencies: { express: '4' } },
      'bin/www': '#!/usr/bin/env node\nrequire("../app");\n',
      'app.js': 'module.exports = require("express")();\n',
      'routes/index.js': '', 'routes/users.js': '', 'views/index.jade': 'h1 hi', 'views/error.jade': '', 'public/stylesheets/style.css': 'body{}',
      '.gitignore': 'node_modules\n*.log\n', 'server.log': 'x', 'node_modules/express/package.json': { name: 'express', version: '4.0.0' },
      'node_modules/express/index.js': '', '.DS_Store': 'x', '.npmrc': 'x=1\n', 'npm-debug.log': 'x', 'app.js.orig': 'x', '.app.js.swp': 'x',
      '.git/HEAD': 'ref', 'package-lock.json': { lockfileVersion: 3 },
    }],
    ['a "files" list with a folder, a glob and a file, plus main, bin, README and LICENSE outside it', {
      'package.json': { name: 'lib', version: '1.0.0', main: 'main.js', bin: { tool: 'cli/tool.js' }, files: ['dist', 'types/*.d.ts', 'extra.json'] },
      'main.js': '', 'cli/tool.js': '', 'cli/other.js': '', 'dist/a.js': '', 'dist/sub/b.js': '', 'dist/.npmignore': 'sub/secret.js\n', 'dist/sub/secret.js': '',
      'types/a.d.ts': '', 'types/a.ts': '', 'extra.json': '{}', 'README.md': '# lib', 'LICENSE': 'MIT', 'CHANGELOG.md': '', 'test/t.js': '',
    }],
    ['nested ignore files, a negation and a root .npmignore over .gitignore', {
      'package.json': { name: 'nested', version: '1.0.0' },
      '.npmignore': '*.log\n!keep.log\nfixtures/\n', '.gitignore': 'src/\n', 'src/index.js': '', 'keep.log': '', 'drop.log': '',
      'fixtures/big.bin': 'x', 'lib/.gitignore': 'generated.js\n', 'lib/generated.js': '', 'lib/real.js': '', 'deep/a/b/c/d.js': '',
    }],
    ['bundled dependencies with their own dependencies, hoisted and nested, and their own "files"', {
      'package.json': { name: 'bundler', version: '1.0.0', dependencies: { a: '1.0.0' }, devDependencies: { d: '1.0.0' }, bundleDependencies: ['a'] },
      'index.js': '',
      'node_modules/a/package.json': { name: 'a', version: '1.0.0', files: ['index.js'], dependencies: { b: '1.0.0', c: '1.0.0' } },
      'node_modules/a/index.js': '', 'node_modules/a/README.md': '', 'node_modules/a/test/t.js': '',
      'node_modules/a/node_modules/c/package.json': { name: 'c', version: '1.0.0' }, 'node_modules/a/node_modules/c/index.js': '',
      'node_modules/b/package.json': { name: 'b', version: '1.0.0' }, 'node_modules/b/index.js': '', 'node_modules/b/.npmignore': 'x.js\n', 'node_modules/b/x.js': '',
      'node_modules/d/package.json': { name: 'd', version: '1.0.0' }, 'node_modules/d/index.js': '',
      'package-lock.json': { lockfileVersion: 3 },
    }],
  ];

  it.each(layouts)('for %s', async (_name, files) => {
    const dir = await scratch();
    await writeTree(dir, files);
    const { packList } = await import('../../services/cli/packlist.js');
    const ours = await packList(dir);
    const theirs = await npmPackList(dir);
    // npm pack leaves the lockfile out; push adds it (unless node_modules are bundled), as prepareBundle does.
    expect(ours.files.filter((f) => f !== ours.lockfile)).toEqual(theirs);
    expect(ours.lockfile).toBe((await prepareBundleLockfile(dir)));
  });

  async function prepareBundleLockfile(dir: string): Promise<string | undefined> {
    const bundle = await prepareBundle(dir);
    cleanups.push(bundle.cleanup);
    return bundle.lockfile;
  }
});

describe('the pack list kept between pushes', () => {
  it('is reused while nothing it depends on changed, and made again when a file is added or a rule file edited', async () => {
    const dir = await scratch();
    const env = { HOTDEPLOY_CACHE_DIR: path.join(await scratch(), 'cache') };
    await writeTree(dir, { 'package.json': { name: 'app', version: '1.0.0' }, 'index.js': '', 'lib/a.js': '', '.npmignore': 'fixtures/\n', 'fixtures/x.bin': 'x' });
    const { packList } = await import('../../services/cli/packlist.js');
    const past = new Date(Date.now() - 60_000);
    const age = async () => {
      // Stamps newer than the cache are never trusted: age the tree as a real one is between pushes.
      for (const rel of ['', 'lib', 'fixtures', 'package.json', '.npmignore']) await utimes(path.join(dir, rel), past, past);
    };
    await age();
    expect((await packList(dir, env)).files).toEqual(['.npmignore', 'index.js', 'lib/a.js', 'package.json'].filter((f) => f !== '.npmignore'));
    // An edit to a packed file's content leaves the list as it is (its hash is the other cache's business),
    // also when saved as editors often do, a new file renamed over the old one (the folder's mtime changes,
    // its names do not): the list is not made again, so its cache file stays the one written before.
    const cacheFiles = async () => {
      const folder = path.join(env.HOTDEPLOY_CACHE_DIR, 'lists');
      return Promise.all((await readdir(folder)).map(async (name) => `${name}:${(await stat(path.join(folder, name))).ino}`));
    };
    const kept = await cacheFiles();
    await writeTree(dir, { 'lib/a.js': 'changed' });
    expect((await packList(dir, env)).files).toEqual(['index.js', 'lib/a.js', 'package.json']);
    await writeFile(path.join(dir, 'lib/.a.js.tmp'), 'saved by rename');
    await rename(path.join(dir, 'lib/.a.js.tmp'), path.join(dir, 'lib/a.js'));
    expect((await packList(dir, env)).files).toEqual(['index.js', 'lib/a.js', 'package.json']);
    expect(await cacheFiles()).toEqual(kept);
    await writeTree(dir, { 'lib/b.js': '' });
    await age();
    expect((await packList(dir, env)).files).toEqual(['index.js', 'lib/a.js', 'lib/b.js', 'package.json']);
    await writeTree(dir, { '.npmignore': 'fixtures/\nlib/b.js\n' });
    await age();
    expect((await packList(dir, env)).files).toEqual(['index.js', 'lib/a.js', 'package.json']);
    await writeTree(dir, { 'fixtures/y.js': '', '.npmignore': 'lib/b.js\n' });
    await age();
    expect((await packList(dir, env)).files).toEqual(['fixtures/x.bin', 'fixtures/y.js', 'index.js', 'lib/a.js', 'package.json']);
  });
});
