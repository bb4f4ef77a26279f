import { lstatSync } from 'node:fs';
import type { AppManifest, UpdateResult } from '../messages.js';
import type { AppState, ReleaseMove } from './app-state.js';
import { diffReleases, type ReleaseDiff } from './diff.js';
import { esmDeadEnd, requiredEsmDeadEnd } from './esm-plan.js';
import { hashOf, readFileIndex, type FileIndex } from './file-index.js';
import { fromRel } from './registry.js';
import { indexFromChanges } from './release-changes.js';
import { propagate, type Change, type Propagation } from './propagate.js';

/** What an update would do, computed without disposing or evaluating anything (webpack's check). */
export type UpdatePlan =
  | ({ kind: 'unchanged' } & ReleaseMove)
  | { kind: 'abort'; to: string; result: Omit<UpdateResult, 'durationMs' | 'from' | 'to'> }
  | ({
    kind: 'apply';
    outdated: string[];
    propagation: Propagation;
    /** Modules that vanished from the release: disposed, never re-required. */
    gone: string[];
    /** Why the whole app is swapped (a changed non-module file), if it is. */
    wholeApp?: string;
  } & ReleaseMove);

/** The new release's file index and how it differs from the app's current release, for `planUpdate`. */
export interface Comparison {
  index: FileIndex;
  diff: ReleaseDiff;
}

/**
 * Reads `to`'s file index and diffs it with the current release's (kept in memory from the last
 * update). When `to`'s `changes.json` was made on top of exactly the current release, the index is
 * rebuilt from it and only the paths it names are compared (release-changes.ts); otherwise the
 * whole `files.json` is read and every entry compared. Synchronous: see file-index.ts.
 */
export function compareReleases(app: AppState, to: string): Comparison {
  const from = app.index?.dir === app.dir ? app.index : readFileIndex(app.dir);
  app.index = from;
  const delta = indexFromChanges(from, to);
  const index = delta?.index ?? readFileIndex(to);
  const diff = diffReleases(from, index, {
    rels: () => app.loadedRels(),
    has: (rel) => app.isLoaded(rel),
    deps: (rel) => app.records.get(rel)?.deps ?? app.esm?.depsOf(rel),
    resolveIn: (to, parentRel, request) => app.resolveIn(to, parentRel, request),
    watchUnloadedCode: app.requiredEsm.size > 0,
  }, delta?.paths);
  return { index, diff };
}

/** Files `readManifest` reads: with them and the set of paths unchanged, it would answer the same. */
const MANIFEST_INPUTS = ['package.json', 'hotdeploy.json'];

/**
 * Whether the current release's manifest holds for `to` as well: its inputs are byte-identical,
 * no path appeared or went, and the entry is still a regular file (`readManifest` resolves the entry
 * by probing paths). Then the update reads no manifest, the usual case for a code change. The file
 * index lists regular files only; a symbolic link does not show in it, so an input missing from an
 * index must be missing from the release too.
 */
export function manifestUnchanged(app: AppState, { index, diff }: Comparison): boolean {
  const from = app.index;
  if (!from || !diff.sameFileSet || !index.files.has(app.manifest.entry)) return false;
  return MANIFEST_INPUTS.every((rel) => {
    const before = hashOf(from, rel);
    const after = hashOf(index, rel);
    if (before !== undefined || after !== undefined) return before === after;
    return !lstatSync(fromRel(from.dir, rel), { throwIfNoEntry: false }) && !lstatSync(fromRel(index.dir, rel), { throwIfNoEntry: false });
  });
}

/**
 * Propagates the change between the app's current release and `to`:
 * changed or gone loaded modules, modules whose requires now resolve elsewhere, invalidated
 * modules, and a moved entry are the starting points; a changed non-module file swaps the whole app.
 */
export function planUpdate(app: AppState, to: string, manifest: AppManifest, { index, diff }: Comparison): UpdatePlan {
  const move: ReleaseMove = { to, manifest, index, nodeModulesChanged: diff.nodeModules, pathsChanged: diff.pathsChanged };
  const abort = (type: 'declined' | 'unaccepted', reason: string, chain: string[]): UpdatePlan =>
    ({ kind: 'abort', to, result: { outcome: type, outdated: [], disposed: [], accepted: [], chain, reason } });

  if (app.manifest.esm || manifest.esm) {
    const dead = esmUnsupported(app, manifest);
    if (dead) return diff.anyFile ? abort('unaccepted', dead, []) : { kind: 'unchanged', ...move };
  }

  const changes = new Map<string, Change>(diff.modules.map((c) => [c.rel, c]));
  for (const rel of [...diff.resolution, ...app.invalidated]) {
    if (app.isLoaded(rel) && !changes.has(rel)) changes.set(rel, { rel, gone: false });
  }
  const handlerMode = app.mode === 'handler';
  // A moved entry, or one that never evaluated (a failed update), is re-required by the host.
  const entryMoved = manifest.entry !== app.entry || !app.isLoaded(app.entry);
  if (entryMoved && app.isLoaded(app.entry)) changes.set(app.entry, { rel: app.entry, gone: false });
  const outdated = [...changes.keys()].sort();
  const gone = diff.modules.filter((c) => c.gone).map((c) => c.rel);

  if (diff.nonModule.length > 0) {
    const reason = `non-module file changed: ${diff.nonModule.slice(0, 5).join(', ')}${diff.nonModule.length > 5 ? ', ...' : ''}`;
    if (!handlerMode) return abort('unaccepted', reason, []);
    const declined = findDecline(app);
    if (declined) return abort('declined', declined.reason, declined.chain);
    const all = app.loadedRels();
    const selfAccepted = all.filter((rel) => rel !== app.entry && app.hotOf(rel)!.selfAccepted);
    const esmDead = app.esm ? esmDeadEnd(app.esm, app.graph, all, manifest, app.esmRetiredLimit) : requiredEsmDeadEnd(app, all, diff.unloadedCode);
    if (esmDead) return abort('unaccepted', esmDead.reason, esmDead.chain);
    return {
      kind: 'apply', ...move, outdated, gone, wholeApp: reason,
      propagation: { type: 'accepted', outdated: all, acceptedBy: new Map(), selfAccepted, entryReached: true },
    };
  }
  const unseen = requiredEsmDeadEnd(app, [], diff.unloadedCode);
  if (unseen) return abort('unaccepted', unseen.reason, unseen.chain);
  if (changes.size === 0 && !(entryMoved && handlerMode)) return { kind: 'unchanged', ...move };
  if (entryMoved && !handlerMode) {
    return abort('unaccepted', `Aborted because the entry moved to ${manifest.entry}`, [app.entry]);
  }

  const effect = propagate({
    parentsOf: (rel) => app.graph.parentsOf(rel),
    hot: (rel) => app.hotOf(rel),
    entry: app.entry,
    hostAcceptsEntry: handlerMode,
  }, [...changes.values()]);
  if (effect.type !== 'accepted') {
    return abort(effect.type === 'unaccepted' ? 'unaccepted' : 'declined', effect.reason, effect.chain);
  }
  if (entryMoved) effect.entryReached = true;
  const esmDead = app.esm ? esmDeadEnd(app.esm, app.graph, effect.outdated, manifest, app.esmRetiredLimit) : requiredEsmDeadEnd(app, effect.outdated, []);
  if (esmDead) return abort('unaccepted', esmDead.reason, esmDead.chain);
  return { kind: 'apply', ...move, outdated, gone, propagation: effect };
}

/** Why an ES module app cannot take this update hot at all, if it cannot. */
function esmUnsupported(app: AppState, manifest: AppManifest): string | undefined {
  if (app.manifest.esm !== manifest.esm) return 'the module type changed (package.json "type" or the entry)';
  return app.esm ? undefined : 'esm-unsupported-node';
}

/** A whole-app swap still honours declines: any self-decline or declined loaded dependency. */
function findDecline(app: AppState): { reason: string; chain: string[] } | undefined {
  for (const rel of app.loadedRels()) {
    const hot = app.hotOf(rel)!;
    if (hot.selfDeclined) return { reason: `Aborted because of self decline: ${rel}`, chain: [rel] };
    for (const dep of hot.declinedDeps) {
      if (app.isLoaded(dep)) return { reason: `Aborted because of declined dependency: ${dep} in ${rel}`, chain: [dep, rel] };
    }
  }
  return undefined;
}
