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
/**
 * A package's documentation and typings under node_modules: no code there reads them, so a
 * dependency added or upgraded does not count them as non-module files (they would swap the app).
 */
const PACKAGE_DOCS = /(?:^|\/)node_modules\/(?:.*\/)?(?:(?:readme|licen[cs]e|changelog|changes|history)[^/]*|[^/]*\.(?:md|markdown|d\.[cm]?ts|map))$/i;

/** A file no module is: not code, not read only by Node and the runtime, not a package's docs. */
function isNonModule(rel: string): boolean {
  return !CODE.test(rel) && !IGNORED.test(rel) && !PACKAGE_DOCS.test(rel);
}

export interface LoadedModules {
  rels(): Iterable<string>;
  has(rel: string): boolean;
  /** What the module's requires resolved to: request → relative path (in the app) or absolute path. */
  deps(rel: string): ReadonlyMap<string, string> | undefined;
  /** `request` resolved from `parentRel` in the release `index` lists, in the same form as `deps` (throws if none). */
  resolveIn(index: FileIndex, parentRel: string, request: string): string;
  /** Whether code files that are not loaded modules matter (`unloadedCode`): code may be loaded unseen. */
  readonly watchUnloadedCode?: boolean;
}

export interface ReleaseDiff {
  /** Loaded modules whose content changed or which are gone. */
  modules: Change[];
  /** Loaded modules whose requires now resolve to another file ("what resolves differently now"). */
  resolution: string[];
  /** Changed, added or removed files that are neither loaded modules nor code, sorted. */
  nonModule: string[];
  /** Changed, added or removed code files that are not loaded modules, sorted: with `watchUnloadedCode` only. */
  unloadedCode: string[];
  /** Whether any file at all differs (ESM apps: any change takes the reload path). */
  anyFile: boolean;
  /** Whether a file under node_modules changed, appeared or went: bare requests may resolve anew. */
  nodeModules: boolean;
  /** Whether both releases hold the same paths (none added, none removed). */
  sameFileSet: boolean;
  /** Whether a path appeared or went or a package.json changed: a request may resolve anew. */
  pathsChanged: boolean;
}

/**
 * Compares two releases as far as the app can tell, in one pass over the new release's file index
 * (and one over the old one's only when files were removed). With both indexes read from the
 * deploy service's hash manifest, an unchanged file costs two Map lookups and a string comparison;
 * only files that differ are classified. Without a manifest (hashes computed on demand), loaded
 * modules are compared first, so unloaded code is hashed only while it can still change the answer
 * (ESM apps: `anyFile`), never once a change is known.
 *
 * `candidates`, when given, are the only paths where the indexes can differ (every other path is in
 * both with the same hash, as with a release's `changes.json`): the passes go over them alone.
 */
export function diffReleases(from: FileIndex, to: FileIndex, loaded: LoadedModules, candidates?: readonly string[]): ReleaseDiff {
  const modules: Change[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  const nonModule: string[] = [];
  const unloadedCode: string[] = [];
  const changedPackageJsons: string[] = [];
  const watch = loaded.watchUnloadedCode ?? false;
  let anyFile = false;
  const hashed = from.fromManifest && to.fromManifest;
  if (!hashed) {
    for (const rel of loaded.rels()) {
      const after = hashOf(to, rel);
      if (after !== undefined && from.files.has(rel) && hashOf(from, rel) !== after) modules.push({ rel, gone: false });
    }
    anyFile = modules.length > 0;
  }
  const visit = (rel: string, hash: string | undefined): void => {
    const before = from.files.get(rel);
    if (before === undefined && !from.files.has(rel)) {
      added.push(rel);
      return;
    }
    // Known equal (both hashed): the common case, and all of it with the manifests.
    if (before !== undefined && before === hash) return;
    const isLoaded = loaded.has(rel);
    if (!hashed && isLoaded) return;
    const code = CODE.test(rel);
    // Unloaded code only matters to ESM apps (anyFile) and to `watch`; skip hashing it otherwise once known.
    if (!isLoaded && code && anyFile && !watch) return;
    if (!hashed && hashOf(from, rel) === hashOf(to, rel)) return;
    anyFile = true;
    if (isLoaded) modules.push({ rel, gone: false });
    else if (IGNORED.test(rel)) {
      if (rel.endsWith('package.json')) changedPackageJsons.push(rel);
    } else if (!code && !PACKAGE_DOCS.test(rel)) nonModule.push(rel);
    else if (code && watch) unloadedCode.push(rel);
  };
  if (candidates) {
    for (const rel of candidates) if (to.files.has(rel)) visit(rel, to.files.get(rel));
  } else {
    for (const [rel, hash] of to.files) visit(rel, hash);
  }
  // Every path of `from` still in `to` was seen above: the sizes tell whether any went.
  if (from.files.size !== to.files.size - added.length) {
    for (const rel of candidates ?? from.files.keys()) if (from.files.has(rel) && !to.files.has(rel)) removed.push(rel);
  }
  for (const rel of [...added, ...removed]) {
    if (loaded.has(rel)) modules.push({ rel, gone: !to.files.has(rel) });
    else if (isNonModule(rel)) nonModule.push(rel);
    else if (watch && CODE.test(rel)) unloadedCode.push(rel);
  }
  anyFile ||= added.length > 0 || removed.length > 0;
  const resolution = resolutionChanges(to, loaded, [...added, ...removed], changedPackageJsons);
  const nodeModules = [...added, ...removed, ...changedPackageJsons, ...modules.map((c) => c.rel)].some((rel) => rel.includes('node_modules/'));
  const sameFileSet = added.length === 0 && removed.length === 0;
  return {
    modules: sortByRel(modules), resolution, nonModule: nonModule.sort(), unloadedCode: unloadedCode.sort(), anyFile, nodeModules,
    sameFileSet, pathsChanged: !sameFileSet || changedPackageJsons.length > 0,
  };
}

/**
 * Re-resolves only the requires an added or removed file (or a changed package.json) can affect:
 * `./x` probes x, x.js, x.json, x.node, x/package.json and x/index.* (Node's LOAD_AS_FILE /
 * LOAD_AS_DIRECTORY), so a file change touches the stems it and its directory name.
 */
function resolutionChanges(to: FileIndex, loaded: LoadedModules, fileSetChanges: string[], packageJsons: string[]): string[] {
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
  // `#internal` requests resolve through the package.json "imports" of their scope.
  const scopes = bare || packageJsons.length > 0;
  for (const rel of loaded.rels()) {
    for (const [request, target] of loaded.deps(rel) ?? []) {
      if (!affects(rel, request, stems, request.startsWith('#') ? scopes : bare)) continue;
      let now: string | undefined;
      try {
        now = loaded.resolveIn(to, rel, request);
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
