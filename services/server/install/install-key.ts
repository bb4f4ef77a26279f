import { createHash } from 'node:crypto';
import { isRecord } from '../../../agent/common/guards.js';
import type { NodeTarget } from '../../../agent/common/node-target.js';
import { DeployError } from '../errors.js';
import type { DependencyPlan } from './bundle-dependencies.js';

/** The service's side of an install: what else, besides the bundle, decides what npm puts on disk. */
export interface InstallEnvironment {
  /** The bytes of `serve --npmrc` (registry, scopes, proxies), null without one. */
  npmrc: Buffer | null;
  /** `npm --version`. */
  npm: string;
  node: NodeTarget;
}

/** package.json's fields that `npm ci` checks against the lockfile: an out-of-sync one must fail as npm fails. */
const PACKAGE_FIELDS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'peerDependenciesMeta',
  'bundleDependencies', 'bundledDependencies', 'overrides', 'workspaces'];

/** The app's own scripts `npm ci` runs, in its order, after installing its dependencies. */
const ROOT_INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepublish', 'preprepare', 'prepare', 'postprepare'];

/** The app's own install scripts when npm runs them (`hotdeploy.installScripts`), undefined when none would run. */
export function rootInstallScripts(plan: Extract<DependencyPlan, { kind: 'npm' }>): Record<string, unknown> | undefined {
  if (!plan.scripts || !isRecord(plan.packageJson.scripts)) return undefined;
  const scripts = plan.packageJson.scripts;
  const own = Object.fromEntries(ROOT_INSTALL_SCRIPTS.filter((name) => scripts[name] !== undefined).map((name) => [name, scripts[name]]));
  return Object.keys(own).length > 0 ? own : undefined;
}

/**
 * The install key: equal keys mean `npm ci` would put the same `node_modules` on disk, so an earlier
 * release's can be linked instead. It covers the lockfile, package.json's dependency fields, whether
 * install scripts run (and the app's own with the files they may read), the service's npm settings and npm version, and the Node ABI, platform, CPU
 * and C library. The lockfile's own `name` and `version` (the app's, rewritten by every `npm
 * version`) are left out: npm does not install from them, and a version bump must not reinstall.
 */
export function installKey(plan: Extract<DependencyPlan, { kind: 'npm' }>, env: InstallEnvironment, ownFiles?: string): string {
  const fields = Object.fromEntries(PACKAGE_FIELDS.filter((f) => plan.packageJson[f] !== undefined).map((f) => [f, plan.packageJson[f]]));
  return sha256(JSON.stringify({
    v: 1,
    lockfile: plan.lockfile,
    lock: sha256(JSON.stringify(withoutOwnVersion(plan.lockfile, plan.lock))),
    package: fields,
    scripts: plan.scripts,
    // Only when there are any, with the digest of the app's own files they read (`ownFiles`): their
    // output (a generated client under node_modules, a build) is then lent only between releases of
    // the same files. Every other key stays as it was.
    ...(rootInstallScripts(plan) ? { rootScripts: rootInstallScripts(plan), ownFiles: ownFiles ?? null } : {}),
    npmrc: env.npmrc ? sha256(env.npmrc) : null,
    npm: env.npm,
    node: env.node,
  }));
}

function withoutOwnVersion(name: string, bytes: Buffer): Record<string, unknown> {
  let lock: unknown;
  try {
    lock = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new DeployError('DEPLOY_ERR_INSTALL', `${name} is not valid JSON`);
  }
  if (!isRecord(lock)) throw new DeployError('DEPLOY_ERR_INSTALL', `${name} is not a JSON object`);
  const { name: _name, version: _version, ...rest } = lock;
  const packages = isRecord(rest.packages) ? rest.packages : undefined;
  const root = packages && isRecord(packages['']) ? packages[''] : undefined;
  if (packages && root) {
    const { name: _n, version: _v, ...deps } = root;
    return { ...rest, packages: { ...packages, '': deps } };
  }
  return rest;
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}
