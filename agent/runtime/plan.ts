import type { AppManifest, UpdateResult } from '../messages.js';
import type { AppState } from './app-state.js';
import { diffReleases } from './diff.js';
import { readFileIndex, type FileIndex } from './file-index.js';
import { propagate, type Change, type Propagation } from './propagate.js';

/** What an update would do, computed without disposing or evaluating anything (webpack's check). */
export type UpdatePlan =
  | { kind: 'unchanged'; to: string; manifest: AppManifest; index: FileIndex; nodeModulesChanged: boolean }
  | { kind: 'abort'; to: string; result: Omit<UpdateResult, 'durationMs' | 'from' | 'to'> }
  | {
    kind: 'apply';
    to: string;
    manifest: AppManifest;
    index: FileIndex;
    nodeModulesChanged: boolean;
    outdated: string[];
    propagation: Propagation;
    /** Modules that vanished from the release: disposed, never re-required. */
    gone: string[];
    /** Why the whole app is swapped (a changed non-module file), if it is. */
    wholeApp?: string;
  };

/**
 * Compares the app's current release with `to` and propagates the change (issue 2, items 2, 3, 9):
 * changed or gone loaded modules, modules whose requires now resolve elsewhere, invalidated
 * modules, and a moved entry are the starting points; a changed non-module file swaps the whole app.
 */
export async function planUpdate(app: AppState, to: string, manifest: AppManifest): Promise<UpdatePlan> {
  const from = app.index?.dir === app.dir ? app.index : await readFileIndex(app.dir);
  app.index = from;
  const index = await readFileIndex(to);
  const diff = await diffReleases(from, index, {
    rels: () => app.records.keys(),
    deps: (rel) => app.records.get(rel)?.deps,
    resolveIn: (dir, parentRel, request) => app.resolveIn(dir, parentRel, request),
  });
  const abort = (type: 'declined' | 'unaccepted', reason: string, chain: string[]): UpdatePlan =>
    ({ kind: 'abort', to, result: { outcome: type, outdated: [], disposed: [], accepted: [], chain, reason } });

  if (app.manifest.esm) return diff.anyFile ? abort('unaccepted', 'esm', []) : { kind: 'unchanged', to, manifest, index, nodeModulesChanged: diff.nodeModules };

  const changes = new Map<string, Change>(diff.modules.map((c) => [c.rel, c]));
  for (const rel of [...diff.resolution, ...app.invalidated]) {
    if (app.records.has(rel) && !changes.has(rel)) changes.set(rel, { rel, gone: false });
  }
  const handlerMode = app.mode === 'handler';
  // A moved entry, or one that never evaluated (a failed update), is re-required by the host.
  const entryMoved = manifest.entry !== app.entry || !app.records.has(app.entry);
  if (entryMoved && app.records.has(app.entry)) changes.set(app.entry, { rel: app.entry, gone: false });
  const outdated = [...changes.keys()].sort();
  const gone = diff.modules.filter((c) => c.gone).map((c) => c.rel);

  if (diff.nonModule.length > 0) {
    const reason = `non-module file changed: ${diff.nonModule.slice(0, 5).join(', ')}${diff.nonModule.length > 5 ? ', ...' : ''}`;
    if (!handlerMode) return abort('unaccepted', reason, []);
    const declined = findDecline(app);
    if (declined) return abort('declined', declined.reason, declined.chain);
    const all = [...app.records.keys()];
    const selfAccepted = all.filter((rel) => rel !== app.entry && app.records.get(rel)!.hot.selfAccepted);
    return {
      kind: 'apply', to, manifest, index, nodeModulesChanged: diff.nodeModules, outdated, gone, wholeApp: reason,
      propagation: { type: 'accepted', outdated: all, acceptedBy: new Map(), selfAccepted, entryReached: true },
    };
  }
  if (changes.size === 0 && !(entryMoved && handlerMode)) return { kind: 'unchanged', to, manifest, index, nodeModulesChanged: diff.nodeModules };
  if (entryMoved && !handlerMode) {
    return abort('unaccepted', `Aborted because the entry moved to ${manifest.entry}`, [app.entry]);
  }

  const effect = propagate({
    parentsOf: (rel) => app.graph.parentsOf(rel),
    hot: (rel) => app.records.get(rel)?.hot,
    entry: app.entry,
    hostAcceptsEntry: handlerMode,
  }, [...changes.values()]);
  if (effect.type !== 'accepted') {
    return abort(effect.type === 'unaccepted' ? 'unaccepted' : 'declined', effect.reason, effect.chain);
  }
  if (entryMoved) effect.entryReached = true;
  return { kind: 'apply', to, manifest, index, nodeModulesChanged: diff.nodeModules, outdated, gone, propagation: effect };
}

/** A whole-app swap still honours declines (issue 2): any self-decline or declined loaded dependency. */
function findDecline(app: AppState): { reason: string; chain: string[] } | undefined {
  for (const [rel, record] of app.records) {
    if (record.hot.selfDeclined) return { reason: `Aborted because of self decline: ${rel}`, chain: [rel] };
    for (const dep of record.hot.declinedDeps) {
      if (app.records.has(dep)) return { reason: `Aborted because of declined dependency: ${dep} in ${rel}`, chain: [dep, rel] };
    }
  }
  return undefined;
}
