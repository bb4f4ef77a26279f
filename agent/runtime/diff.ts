import { isBuiltin } from 'node:module';
import path from 'node:path';
import { hashOf, type FileIndex } from './file-index.js';
import type { Change } from './propagate.js';

/** Files that are code: a changed one that was never loaded needs nothing (the next require reads it). */
const CODE = /\.(?:[cm]?js|jsx|[cm]?ts|tsx|map|node)$/;
/**
 * Read by Node and the runtime, not by app code, and bumped by every `npm version`; and the deploy
 * service's own per-release files (`.hotdeploy/`).
 */
const IGNORED = /(?:^|\/)package\.json$|^(?:package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml)$|^\.hotdeploy\//;

export interface LoadedModules {
  rels(): Iterable<string>;
  /** What the module's requires resolved to: request → relative path (in the app) or absolute path. */
  deps(rel: string): ReadonlyMap<string, string> | undefined;
  /** `request` resolved from `parentRel` in release `dir`, in the same form as `deps` (throws if none). */
  resolveIn(dir: string, parentRel: string, request: string): string;
}

export interface ReleaseDiff {
  /** Loaded modules whose content changed or which are gone. */
  modules: Change[];
  /** Loaded modules whose requires now resolve to another file ("what resolves differently now"). */
  resolution: string[];
  /** Changed, added or removed files that are neither loaded modules nor code, sorted. */
  nonModule: string[];
  /** Whether any file at all differs (ESM apps: any change takes the reload path). */
  anyFile: boolean;
  /** Whether a file under node_modules changed, appeared or went: bare requests may resolve anew. */
  nodeModules: boolean;
}

/**
 * Compares two releases as far as the app can tell: hashes of the loaded modules only (work
 * proportional to what is loaded, not to node_modules), the file lists for non-module files and
 * for resolution changes.
 */
export async function diffReleases(from: FileIndex, to: FileIndex, loaded: LoadedModules): Promise<ReleaseDiff> {
  const loadedSet = new Set(loaded.rels());
  const modules: Change[] = [];
  for (const rel of loadedSet) {
    const after = await hashOf(to, rel);
    if (after === undefined) modules.push({ rel, gone: true });
    else if ((await hashOf(from, rel)) !== after) modules.push({ rel, gone: false });
  }
  const added = [...to.files.keys()].filter((rel) => !from.files.has(rel));
  const removed = [...from.files.keys()].filter((rel) => !to.files.has(rel));
  const nonModule = [...added, ...removed].filter((rel) => !loadedSet.has(rel) && !CODE.test(rel) && !IGNORED.test(rel));
  const changedPackageJsons: string[] = [];
  let anyFile = added.length > 0 || removed.length > 0 || modules.length > 0;
  for (const rel of from.files.keys()) {
    if (loadedSet.has(rel) || !to.files.has(rel)) continue;
    const code = CODE.test(rel);
    const ignored = IGNORED.test(rel);
    // Unloaded code only matters to ESM apps (anyFile); skip hashing it otherwise once known.
    if (code && anyFile) continue;
    if ((await hashOf(from, rel)) === (await hashOf(to, rel))) continue;
    anyFile = true;
    if (ignored) {
      if (rel.endsWith('package.json')) changedPackageJsons.push(rel);
    }
    else if (!code) nonModule.push(rel);
  }
  const resolution = resolutionChanges(to.dir, loaded, [...added, ...removed], changedPackageJsons);
  const nodeModules = [...added, ...removed, ...changedPackageJsons, ...modules.map((c) => c.rel)].some((rel) => rel.includes('node_modules/'));
  return { modules: sortByRel(modules), resolution, nonModule: nonModule.sort(), anyFile, nodeModules };
}

/**
 * Re-resolves only the requires an added or removed file (or a changed package.json) can affect:
 * `./x` probes x, x.js, x.json, x.node, x/package.json and x/index.* (Node's LOAD_AS_FILE /
 * LOAD_AS_DIRECTORY), so a file change touches the stems it and its directory name.
 */
function resolutionChanges(dir: string, loaded: LoadedModules, fileSetChanges: string[], packageJsons: string[]): string[] {
  if (fileSetChanges.length === 0 && packageJsons.length === 0) return [];
  const stems = new Set<string>();
  // Bare requests resolve through node_modules: only a change there can move them.
  let bare = false;
  for (const rel of [...fileSetChanges, ...packageJsons]) {
    stems.add(rel);
    stems.add(rel.replace(/\.[^./]+$/, ''));
    const base = path.posix.basename(rel);
    if (/^index\.[^/]+$/.test(base) || base === 'package.json') stems.add(path.posix.dirname(rel));
    if (rel.includes('node_modules/')) bare = true;
  }
  const changed: string[] = [];
  for (const rel of loaded.rels()) {
    for (const [request, target] of loaded.deps(rel) ?? []) {
      if (!affects(rel, request, stems, bare)) continue;
      let now: string | undefined;
      try {
        now = loaded.resolveIn(dir, rel, request);
      } catch {
        now = undefined;
      }
      if (now !== target) {
        changed.push(rel);
        break;
      }
    }
  }
  return changed.sort();
}

function affects(parentRel: string, request: string, stems: Set<string>, bare: boolean): boolean {
  if (request.startsWith('./') || request.startsWith('../') || request === '.' || request === '..') {
    return stems.has(path.posix.normalize(path.posix.join(path.posix.dirname(parentRel), request)));
  }
  if (path.isAbsolute(request) || isBuiltin(request)) return false;
  return bare;
}

function sortByRel(changes: Change[]): Change[] {
  return changes.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}
