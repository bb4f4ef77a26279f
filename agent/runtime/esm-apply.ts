import type { EsmCallbacks, ModuleNamespace } from './esm-hot.js';
import type { EsmModules } from './esm-modules.js';
import type { ModuleGraph } from './graph.js';
import type { Propagation } from './propagate.js';

type Task = () => Promise<void>;

/** The ES module side of one apply (apply.ts calls it between its own steps). */
export interface EsmApply {
  /** ES modules whose accept callbacks take (some of) this update. */
  readonly acceptors: ReadonlySet<string>;
  /** Imports the new versions of `deps` and calls `rel`'s callbacks for them; false on an error. */
  accept(rel: string, deps: string[], errors: unknown[]): Promise<boolean>;
  /** After the acceptors and the entry: prunes what nobody imports now, or retires a failed update's versions. */
  finish(entry: string, errors: unknown[], retire: Task[]): Promise<void>;
}

/**
 * Vite's order (HMRClient.fetchUpdate): the callbacks are the ones registered before the update —
 * a self-accepting module's old version gets its new namespace — so they are taken now, before the
 * dispose step drops the records.
 */
export function beginEsmApply(esm: EsmModules, graph: ModuleGraph, propagation: Propagation, isLoaded: (rel: string) => boolean): EsmApply {
  const mark = esm.beginUpdate();
  const callbacks = new Map<string, EsmCallbacks['accept']>();
  for (const rel of [...propagation.acceptedBy.keys(), ...propagation.selfAccepted]) {
    const record = esm.records.get(rel);
    if (record) callbacks.set(rel, [...record.callbacks.accept]);
  }
  // What a disposed module imported may be imported by nobody afterwards (Vite's prune).
  const orphans = new Set<string>();
  for (const rel of propagation.outdated) for (const child of graph.childrenOf(rel)) orphans.add(child);
  return {
    acceptors: new Set(callbacks.keys()),
    async accept(rel, deps, errors) {
      const before = errors.length;
      const modules = new Map<string, ModuleNamespace>();
      for (const dep of deps) {
        try {
          modules.set(dep, await esm.importCurrent(dep));
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > before) return false;
      for (const { deps: cbDeps, fn } of callbacks.get(rel) ?? []) {
        if (!cbDeps.some((d) => modules.has(d))) continue;
        try {
          fn(cbDeps.map((d) => modules.get(d)));
        } catch (err) {
          errors.push(err);
        }
      }
      return errors.length === before;
    },
    async finish(entry, errors, retire) {
      if (errors.length > 0) {
        esm.retireSince(mark);
        return;
      }
      for (const rel of orphans) {
        if (rel === entry || !esm.records.has(rel)) continue;
        if ([...graph.parentsOf(rel)].some(isLoaded)) continue;
        await esm.prune(rel, errors, retire);
      }
    },
  };
}
