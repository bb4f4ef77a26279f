import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/release.js';

const run = promisify(execFile);

export type GeneratedApp = 'express-app' | 'koa-app' | 'fastify-app' | 'nest-app';

/**
 * npm's cache for the fixtures' packages: filled on the first run (from the registry), offline
 * after. Outside the checkout, so `npm ci` of the repository does not empty it; npm's cache takes
 * concurrent writers (several test runs at once).
 */
export const NPM_CACHE = path.join(os.tmpdir(), 'hotdeploy-test-npm-cache');

/**
 * A copy of a generated app (test/fixtures/generated/<name>) at `dir`, with `hotdeploy` settings
 * merged into its package.json and its production dependencies installed as a user would:
 * `npm ci --omit=dev` from its committed lockfile, through npm's cache.
 */
export async function installedCopy(name: GeneratedApp, dir: string, hotdeploy?: Record<string, unknown>): Promise<string> {
  await mkdir(path.dirname(dir), { recursive: true });
  await cp(path.join(repoRoot, 'test', 'fixtures', 'generated', name), dir, { recursive: true });
  if (hotdeploy) await setHotdeploy(dir, hotdeploy);
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--cache', NPM_CACHE, '--loglevel=error'], {
    cwd: dir,
    timeout: 240_000,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  return dir;
}


/**
 * Another release of an installed app: `from` hard-linked to `to` (fast, as the release store links
 * unchanged files), then `file` replaced by `edit` of it — a new file, never the shared one.
 */
export async function nextRelease(from: string, to: string, file?: string, edit?: (source: string) => string): Promise<string> {
  await run('cp', ['-al', from, to]);
  if (file && edit) {
    const target = path.join(to, file);
    const source = await readFile(target, 'utf8');
    await rm(target);
    await writeFile(target, edit(source));
  }
  return to;
}

/** Replaces the `hotdeploy` settings in `dir`'s package.json (a new file, not one shared by links). */
export async function setHotdeploy(dir: string, hotdeploy: Record<string, unknown>): Promise<void> {
  const file = path.join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await rm(file);
  await writeFile(file, JSON.stringify({ ...pkg, hotdeploy }, null, 2));
}
