import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isRecord } from '../../../agent/common/guards.js';
import { DeployError } from '../errors.js';

/** The npm lockfiles `npm ci` installs from; npm-shrinkwrap.json wins when a bundle has both (npm's rule). */
export type NpmLockfile = 'npm-shrinkwrap.json' | 'package-lock.json';

/** How a bundle's dependencies arrive on the host. */
export type DependencyPlan =
  /** It has `node_modules`: they belong to the app and are used as they are. */
  | { kind: 'bundled' }
  /** Neither node_modules nor a lockfile: nothing to install (an app without dependencies). */
  | { kind: 'none' }
  /** A lockfile and no node_modules: `npm ci` in the staging directory, or the same install linked. */
  | { kind: 'npm'; lockfile: NpmLockfile; lock: Buffer; packageJson: Record<string, unknown>; scripts: boolean };

const OTHER_LOCKFILES = ['yarn.lock', 'pnpm-lock.yaml', 'bun.lock', 'bun.lockb'];

/**
 * What the unpacked bundle at `root` brings. A yarn, pnpm or bun lockfile without node_modules is
 * refused (DEPLOY_ERR_LOCKFILE): the host installs with npm only, which ships with Node — another
 * package manager would have to be installed on every host at the version the lockfile was written
 * with, and its lockfile means nothing to npm. A bundle's own `.npmrc` is refused when an install
 * would run (DEPLOY_ERR_INSTALL): npm would read it as project settings, and registry settings and
 * their tokens are the service's (`serve --npmrc`).
 */
export async function dependencyPlan(root: string): Promise<DependencyPlan> {
  const names = new Set(await readdir(root));
  if (names.has('node_modules')) return { kind: 'bundled' };
  const lockfile = (['npm-shrinkwrap.json', 'package-lock.json'] as const).find((name) => names.has(name));
  if (!lockfile) {
    const other = OTHER_LOCKFILES.find((name) => names.has(name));
    if (other) {
      throw new DeployError('DEPLOY_ERR_LOCKFILE', `the bundle has ${other} and no node_modules: make a package-lock.json (\`npm install --package-lock-only\`) and push with it, or bundle node_modules ("bundleDependencies")`);
    }
    return { kind: 'none' };
  }
  if (names.has('.npmrc')) {
    throw new DeployError('DEPLOY_ERR_INSTALL', 'the bundle carries an .npmrc; registry settings are the service\'s (serve --npmrc FILE): leave .npmrc out of the bundle');
  }
  const packageJson = await readJsonObject(root, 'package.json');
  const settings = names.has('hotdeploy.json') ? await readJsonObject(root, 'hotdeploy.json') : {};
  return { kind: 'npm', lockfile, lock: await readFile(path.join(root, lockfile)), packageJson, scripts: installScripts(packageJson, settings) };
}

/** `hotdeploy.installScripts` (package.json's, or hotdeploy.json's, which wins): whether npm may run install scripts. */
function installScripts(pkg: Record<string, unknown>, file: Record<string, unknown>): boolean {
  const value = file.installScripts ?? (isRecord(pkg.hotdeploy) ? pkg.hotdeploy.installScripts : undefined) ?? false;
  if (typeof value !== 'boolean') throw new DeployError('DEPLOY_ERR_SETTINGS', 'installScripts must be true or false');
  return value;
}

async function readJsonObject(root: string, name: string): Promise<Record<string, unknown>> {
  try {
    const value: unknown = JSON.parse(await readFile(path.join(root, name), 'utf8'));
    if (isRecord(value)) return value;
  } catch {
    // answered below
  }
  throw new DeployError('DEPLOY_ERR_MANIFEST', `${name} is not a JSON object`);
}
