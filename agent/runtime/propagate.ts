import type { HotState } from './hot-api.js';

/** What propagation reads about the app: pure data, so it can be planned without touching anything. */
export interface PropagationView {
  parentsOf(rel: string): Iterable<string>;
  /** The module's hot state, or undefined when it is not loaded. */
  hot(rel: string): HotState | undefined;
  /** The app's entry module. */
  readonly entry: string;
  /** Handler mode: the host re-evaluates the entry and swaps the handler (its implicit acceptor). */
  readonly hostAcceptsEntry: boolean;
}

export interface Change {
  rel: string;
  /** The file is no longer in the new release. */
  gone: boolean;
}

export type DeadEnd = { type: 'self-declined' | 'declined' | 'unaccepted'; chain: string[]; reason: string };

export interface Propagation {
  type: 'accepted';
  /** Modules to dispose, in propagation order (webpack's outdatedModules). */
  outdated: string[];
  /** Accepting parent → the outdated dependencies its accept handlers take (parent not outdated). */
  acceptedBy: Map<string, string[]>;
  /** Outdated modules that accept themselves: re-required after dispose. */
  selfAccepted: string[];
  /** The change reaches the entry and the host accepts it: re-evaluate the entry, swap the handler. */
  entryReached: boolean;
}

/**
 * webpack's getAffectedModuleEffects for every change, merged (HotModuleReplacement.runtime.js):
 * walk from each changed module up its parents until every path ends in an acceptor, or stop at the
 * first dead end — a self-decline, a declined dependency, or a module nobody accepts — with the chain.
 */
export function propagate(view: PropagationView, changes: Change[]): Propagation | DeadEnd {
  const outdated = new Set<string>();
  const acceptedBy = new Map<string, Set<string>>();
  let entryReached = false;
  for (const change of changes) {
    const effect = affected(view, change);
    if (effect.type !== 'accepted') return effect;
    for (const rel of effect.outdated) outdated.add(rel);
    for (const [parent, deps] of effect.acceptedBy) {
      const set = acceptedBy.get(parent) ?? new Set<string>();
      for (const dep of deps) set.add(dep);
      acceptedBy.set(parent, set);
    }
    entryReached ||= effect.entryReached;
  }
  // A parent that is itself outdated is re-evaluated whole; its accept handlers never run (webpack).
  for (const parent of acceptedBy.keys()) if (outdated.has(parent)) acceptedBy.delete(parent);
  // In handler mode the host re-evaluates an outdated entry (even a self-accepting one) itself.
  if (view.hostAcceptsEntry && outdated.has(view.entry)) entryReached = true;
  const selfAccepted = [...outdated].filter((rel) => {
    const hot = view.hot(rel);
    return hot !== undefined && hot.selfAccepted && !hot.selfInvalidated && !(rel === view.entry && view.hostAcceptsEntry);
  });
  return {
    type: 'accepted',
    outdated: [...outdated],
    acceptedBy: new Map([...acceptedBy].map(([parent, deps]) => [parent, [...deps]])),
    selfAccepted,
    entryReached,
  };
}

function affected(view: PropagationView, change: Change):
  | { type: 'accepted'; outdated: string[]; acceptedBy: Map<string, Set<string>>; entryReached: boolean }
  | DeadEnd {
  const outdated = [change.rel];
  const acceptedBy = new Map<string, Set<string>>();
  let entryReached = false;
  const queue: { rel: string; chain: string[] }[] = [{ rel: change.rel, chain: [change.rel] }];
  while (queue.length > 0) {
    const { rel, chain } = queue.pop()!;
    const hot = view.hot(rel);
    if (!hot || (hot.selfAccepted && !hot.selfInvalidated)) continue;
    if (hot.selfDeclined) return deadEnd('self-declined', chain, `Aborted because of self decline: ${rel}`);
    if (rel === view.entry) {
      if (view.hostAcceptsEntry) {
        entryReached = true;
        continue;
      }
      return deadEnd('unaccepted', chain, `Aborted because ${rel} is not accepted`);
    }
    const parents = [...view.parentsOf(rel)].filter((p) => view.hot(p) !== undefined);
    // A module no loaded module requires any more: a gone one is just disposed (webpack's
    // "disposed"); a changed one has nobody to pick up its new version.
    if (parents.length === 0) {
      if (rel === change.rel && change.gone) continue;
      return deadEnd('unaccepted', chain, `Aborted because ${rel} is not accepted`);
    }
    for (const parent of parents) {
      const parentHot = view.hot(parent)!;
      if (parentHot.declinedDeps.has(rel)) {
        return deadEnd('declined', [...chain, parent], `Aborted because of declined dependency: ${rel} in ${parent}`);
      }
      if (outdated.includes(parent)) continue;
      if (parentHot.acceptedDeps.has(rel)) {
        const set = acceptedBy.get(parent) ?? new Set<string>();
        acceptedBy.set(parent, set.add(rel));
        continue;
      }
      acceptedBy.delete(parent);
      outdated.push(parent);
      queue.push({ rel: parent, chain: [...chain, parent] });
    }
  }
  return { type: 'accepted', outdated, acceptedBy, entryReached };
}

function deadEnd(type: DeadEnd['type'], chain: string[], message: string): DeadEnd {
  return { type, chain, reason: `${message}\nUpdate propagation: ${chain.join(' -> ')}` };
}
