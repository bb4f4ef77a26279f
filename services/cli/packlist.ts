import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PacklistNode } from 'npm-packlist';
import { CliError } from './errors.js';
import { lockfileToAdd } from './lockfile.js';
import { cacheFile, writeAtomic } from './local-files.js';

/** A directory's files as `npm pack` would pack them, plus the lockfile it leaves out (lockfile.ts). */
export interface PackList {
  /** posix paths relative to the directory, sorted. */
  files: string[];
  /** package.json's version (npm pack requires one). */
  version: string;
  lockfile?: string;
}

/**
 * Lists `dir`'s files by npm's own packing rules, in-process: npm-packlist (the library `npm pack`
 * runs) over a dependency tree built here from package.json files. npm builds that tree with
 * @npmcli/arborist, whose loading alone cost ~0.3 s; npm-packlist reads only each node's path,
 * package.json and dependency edges, which resolving `node_modules` folders the way Node does gives.
 */
export async function packList(dir: string, env?: NodeJS.ProcessEnv): Promise<PackList> {
  const pkg = readPackage(dir);
  if (typeof pkg.name !== 'string' || typeof pkg.version !== 'string') {
    throw new CliError('CLI_ERR_PACK', `${dir}/package.json needs a name and version (npm pack refuses it otherwise)`);
  }
  const known = env && (await knownList(dir, env));
  if (known) return known;
  const { default: packlist } = await import('npm-packlist');
  const nodes = new Map<string, PacklistNode>();
  const files = (await packlist(projectNode(dir, pkg, nodes))).map((f) => f.replaceAll('\\', '/'));
  const lockfile = lockfileToAdd(dir, files);
  if (lockfile) files.push(lockfile);
  const list: PackList = { files: files.sort(), version: pkg.version, ...(lockfile ? { lockfile } : {}) };
  if (env) await rememberList(dir, env, list, [...nodes.keys()]);
  return list;
}

/** The folders a pack list was made from and the files whose rules it read, each by its stat. */
interface ListCache {
  version: 1;
  list: PackList;
  stamps: Record<string, string>;
}

/** Files whose content changes the list without changing their folder. */
const RULE_FILES = ['package.json', '.npmignore', '.gitignore'];

/**
 * The last list made from `dir`, when no folder it walked and no rule file it read has changed
 * since: a file added, removed or renamed changes its folder's mtime, an edited rule file its own.
 * npm-packlist's walk took 2 s for 3,400 bundled dependency files here (a compiled matcher per rule
 * and folder); checking the stamps is a stat per folder. As for file hashes, a stamp not older than
 * the cache is never trusted (git's rule for changes within one tick).
 */
async function knownList(dir: string, env: NodeJS.ProcessEnv): Promise<PackList | undefined> {
  const file = cacheFile(env, 'lists', path.resolve(dir));
  try {
    const [text, written] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const cache = JSON.parse(text) as ListCache;
    if (cache.version !== 1) return undefined;
    for (const [rel, stamp] of Object.entries(cache.stamps)) {
      const st = lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
      if (stampOf(st) !== stamp || (st?.mtimeMs ?? Infinity) >= written.mtimeMs) return undefined;
    }
    return cache.list;
  } catch {
    return undefined;
  }
}

async function rememberList(dir: string, env: NodeJS.ProcessEnv, list: PackList, bundled: string[]): Promise<void> {
  const stamps: Record<string, string> = {};
  const walk = (rel: string, root: boolean): void => {
    const abs = path.join(dir, rel);
    stamps[rel] = stampOf(lstatSync(abs));
    for (const name of RULE_FILES) {
      const st = lstatSync(path.join(abs, name), { throwIfNoEntry: false });
      if (st) stamps[path.join(rel, name)] = stampOf(st);
    }
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      // The packed tree: never .git, and node_modules only where bundled packages are (walked below).
      if (!entry.isDirectory() || entry.name === '.git' || (root && entry.name === 'node_modules')) continue;
      walk(path.join(rel, entry.name), false);
    }
  };
  walk('', true);
  for (const location of bundled) {
    for (let rel = path.relative(dir, location); rel !== '' && !stamps[rel]; rel = path.dirname(rel) === '.' ? '' : path.dirname(rel)) {
      const st = lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
      if (st) stamps[rel] = stampOf(st);
    }
    if (path.relative(dir, location).startsWith('..')) continue;
    walk(path.relative(dir, location), false);
  }
  await writeAtomic(cacheFile(env, 'lists', path.resolve(dir)), JSON.stringify({ version: 1, list, stamps } satisfies ListCache));
}

function stampOf(st: Stats | undefined): string {
  return st ? `${st.mtimeMs}:${st.ctimeMs}:${st.ino}:${st.size}` : 'absent';
}

function readPackage(dir: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'package.json'), 'utf8');
  } catch {
    throw new CliError('CLI_ERR_SOURCE', `${dir} has no package.json (push the app's own directory, or a .tgz)`);
  }
  try {
    const pkg = JSON.parse(text) as unknown;
    if (typeof pkg === 'object' && pkg !== null && !Array.isArray(pkg)) return pkg as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CliError('CLI_ERR_PACK', `${dir}/package.json is not a JSON object`);
}

/** The root: its bundled dependencies are `bundleDependencies` (every dependency when `true`). */
function projectNode(dir: string, pkg: Record<string, unknown>, nodes: Map<string, PacklistNode>): PacklistNode {
  const bundled = pkg.bundleDependencies ?? pkg.bundledDependencies;
  const names = bundled === true ? Object.keys(asDeps(pkg.dependencies)) : Array.isArray(bundled) ? bundled.filter((n): n is string => typeof n === 'string') : [];
  const root = node(dir, pkg, true);
  root.package = { ...pkg, bundleDependencies: names };
  root.edgesOut = edges(dir, names, nodes);
  return root;
}

/**
 * A dependency's node, its edges resolved lazily (npm-packlist asks only for the nodes it bundles):
 * a symlinked package is a link whose target is the real folder, as arborist has it.
 */
function dependencyNode(location: string, nodes: Map<string, PacklistNode>): PacklistNode {
  const real = realpathSync(location);
  const known = nodes.get(location);
  if (known) return known;
  const pkg = readPackage(real);
  const target = node(real, pkg, false);
  nodes.set(location, target);
  let resolved: PacklistNode['edgesOut'] | undefined;
  Object.defineProperty(target, 'edgesOut', {
    get: () => (resolved ??= edges(real, [...Object.keys(asDeps(pkg.dependencies)), ...Object.keys(asDeps(pkg.optionalDependencies))], nodes)),
  });
  if (!lstatSync(location).isSymbolicLink()) return target;
  return { ...node(location, pkg, false), isLink: true, target };
}

function node(dir: string, pkg: Record<string, unknown>, isProjectRoot: boolean): PacklistNode {
  const self: PacklistNode = { path: dir, package: pkg, isProjectRoot, isLink: false, target: undefined as unknown as PacklistNode, edgesOut: new Map() };
  self.target = self;
  return self;
}

/** Each name resolved as Node resolves a package: `node_modules/<name>` here, then in every folder above. */
function edges(from: string, names: string[], nodes: Map<string, PacklistNode>): PacklistNode['edgesOut'] {
  const out: PacklistNode['edgesOut'] = new Map();
  for (const name of names) {
    let to: PacklistNode | null = null;
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) {
        to = dependencyNode(candidate, nodes);
        break;
      }
      if (path.dirname(dir) === dir) break;
    }
    out.set(name, { to, peer: false, dev: false });
  }
  return out;
}

function asDeps(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
