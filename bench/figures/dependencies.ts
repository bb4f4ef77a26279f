import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Files } from '../app-gen.js';
import { packDir, packFiles, writeFiles } from '../bundle.js';
import { spawnServer } from '../child.js';
import type { DependenciesFigure } from '../report.js';
import { settle } from '../settle.js';
import { putBundle } from '../stack.js';
import { round, summarize } from '../stats.js';
import { tempDir } from '../tmp.js';

const run = promisify(execFile);
const TOKEN = 'bench-deps-token-0123456789';
/** 100 packages of 32 files in 4 folders each: 3,200 dependency files, 400 folders, as an express app's tree is shaped. */
const PACKAGES = 100;
const FILES_PER_PACKAGE = 32;

interface Release {
  install?: { how: string; ms: number; files: number };
}

/**
 * Figure 8: what dependencies installed on the host add to a one-file change while the lockfile
 * stays the same. A service of its own (its own process, no PM2) installs a generated app's 3,200
 * dependency files once with `npm ci` (offline, from an npm cache filled with `npm cache add` of
 * tarballs made here: no registry); then each round pushes a one-file change of that app, whose
 * node_modules are linked from the current release (the release's `install.ms`: the node_modules
 * step), and of the same app without a lockfile (the control), in alternating order. Both go through
 * activation with no worker: stored, made current, pruned.
 */
export async function dependenciesFigure(rounds: number): Promise<DependenciesFigure> {
  const { dir, cleanup } = await tempDir('hd-bench-deps-');
  let server: Awaited<ReturnType<typeof spawnServer>> | undefined;
  try {
    const dataDir = path.join(dir, 'data');
    const lockfile = await fillNpmCache(dir, path.join(dataDir, 'npm', 'cache'));
    const npmrc = path.join(dir, 'npmrc');
    await writeFile(npmrc, 'offline=true\n');
    server = await spawnServer('server-child.js', [dataDir, TOKEN, JSON.stringify({ localAgent: false, npmrc })], [], 60_000);
    const port = server.port;
    const push = async (app: string, version: string, files: Files): Promise<{ ms: number; release: Release }> => {
      const bundle = await packFiles(files);
      await settle();
      const t0 = performance.now();
      const { body } = await putBundle(port, TOKEN, `/v1/apps/${app}/releases/${version}`, bundle);
      return { ms: performance.now() - t0, release: (body as { release: Release }).release };
    };
    const first = await push('deps', 'v0', app('v0', lockfile));
    if (first.release.install?.how !== 'npm ci') throw new Error(`the first push did not install: ${JSON.stringify(first.release.install)}`);
    await push('plain', 'v0', app('v0'));
    const step: number[] = [];
    const withDeps: number[] = [];
    const control: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      const order = i % 2 === 0 ? ['deps', 'plain'] : ['plain', 'deps'];
      for (const name of order) {
        const { ms, release } = await push(name, `v${i}`, app(`v${i}`, name === 'deps' ? lockfile : undefined));
        if (name === 'plain') {
          control.push(ms);
          continue;
        }
        if (release.install?.how !== 'linked') throw new Error(`push ${i} was not linked: ${JSON.stringify(release.install)}`);
        withDeps.push(ms);
        step.push(release.install.ms);
      }
    }
    const added = summarize(withDeps).median - summarize(control).median;
    return {
      packages: PACKAGES, files: first.release.install.files, firstInstallMs: round(first.release.install.ms, 0), rounds,
      step: summarize(step), withDeps: summarize(withDeps), control: summarize(control), added: round(added),
    };
  } finally {
    await server?.stop();
    await cleanup();
  }
}

/** The app: one module that changes each round, and with `lockfile` every generated package as a dependency. */
function app(version: string, lockfile?: object): Files {
  return {
    'package.json': JSON.stringify({ name: 'deps', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 }, ...(lockfile ? { dependencies: dependencies() } : {}) }),
    'index.js': `module.exports = (req, res) => res.end(${JSON.stringify(version)});\n`,
    ...(lockfile ? { 'package-lock.json': JSON.stringify(lockfile, null, 2) } : {}),
  };
}

function pkgName(i: number): string {
  return `bench-dep-${String(i).padStart(3, '0')}`;
}

/**
 * Packs the generated packages (node-tar, `package/` as npm packs) under `dir`, adds them to the
 * service's npm cache in one `npm cache add`, and returns the lockfile of the app (`deps`) that
 * depends on every one (as `dependencies()` lists them), naming them by integrity.
 */
async function fillNpmCache(dir: string, cacheDir: string): Promise<object> {
  const tarballs: string[] = [];
  const packages: Record<string, object> = {};
  await mkdir(path.join(dir, 'tgz'), { recursive: true });
  for (let i = 0; i < PACKAGES; i++) {
    const name = pkgName(i);
    const root = path.join(dir, 'src', name);
    await writeFiles(path.join(root, 'package'), packageFiles(name));
    const file = path.join(dir, 'tgz', `${name}-1.0.0.tgz`);
    await packDir(root, file);
    const integrity = `sha512-${createHash('sha512').update(await readFile(file)).digest('base64')}`;
    tarballs.push(file);
    packages[`node_modules/${name}`] = { version: '1.0.0', resolved: `https://registry.invalid/${name}/-/${name}-1.0.0.tgz`, integrity };
  }
  await run('npm', ['cache', 'add', ...tarballs, '--cache', cacheDir], { maxBuffer: 16 * 1024 * 1024 });
  return { name: 'deps', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'deps', version: '1.0.0', dependencies: dependencies() }, ...packages } };
}

/** package.json's `dependencies` for every generated package. */
export function dependencies(): Record<string, string> {
  return Object.fromEntries(Array.from({ length: PACKAGES }, (_, i) => [pkgName(i), '1.0.0']));
}

export function packageFiles(name: string): Files {
  const files: Files = {
    'package.json': JSON.stringify({ name, version: '1.0.0', main: 'index.js' }),
    'index.js': "module.exports = require('./lib/f0.js');\n",
    'README.md': `# ${name}\n`,
    LICENSE: 'MIT\n',
  };
  const rest = FILES_PER_PACKAGE - Object.keys(files).length;
  for (let f = 0; f < rest; f++) {
    const folder = ['lib', 'lib/internal', 'types'][f % 3] as string;
    files[`${folder}/f${f}.js`] = `'use strict';\nexports.value = ${JSON.stringify(`${name}:${f}:${'x'.repeat(200 + (f * 37) % 900)}`)};\n`;
  }
  return files;
}
