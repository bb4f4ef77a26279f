import type { HotState, RetireHandler } from './hot-api.js';

/** A module namespace (`import * as ns`), or undefined for an accepted dependency that did not change. */
export type ModuleNamespace = Record<string, unknown>;
type DataHandler = (data: Record<string, unknown>) => void | Promise<void>;

/** What apply reads beside `HotState`: Vite's callbacks, which receive the new module namespaces. */
export interface EsmCallbacks {
  /** Accept callbacks: `deps` are relative paths (this module's own for a self-accept). */
  accept: { deps: string[]; fn: (modules: (ModuleNamespace | undefined)[]) => void }[];
  prune: DataHandler | undefined;
}

/** What a module's `import.meta.hot` needs from its app. */
export interface EsmHotContext {
  readonly rel: string;
  /** The persisted `data` of this module (the same object for every version, as in Vite). */
  readonly data: Record<string, unknown>;
  /** `specifier` as this module imports it, as a relative path (throws HOT_ERR_ACCEPT if not the app's). */
  resolve(specifier: string): string;
  invalidate(rel: string): void;
}

/** The public `import.meta.hot` (types for app authors: agent/hot.d.ts). */
export interface EsmHotApi {
  readonly data: Record<string, unknown>;
  accept(deps?: string | readonly string[] | ((module: ModuleNamespace | undefined) => void), callback?: (modules: never) => void): void;
  dispose(handler: DataHandler): void;
  prune(handler: DataHandler): void;
  decline(): void;
  invalidate(message?: string): void;
  retire(handler: RetireHandler): void;
}

export function newEsmCallbacks(): EsmCallbacks {
  return { accept: [], prune: undefined };
}

/**
 * Builds one module's `import.meta.hot` with Vite's meanings (packages/vite/src/shared/hmr.ts):
 * `accept()` and `accept(cb)` accept the module itself and `cb` gets the new version's namespace;
 * `accept(dep, cb)` gets the dependency's new namespace, `accept([deps], cb)` an array (undefined
 * for those that did not change); `dispose(cb)` and `prune(cb)` keep the last handler given, and
 * get `data`, which persists across versions. Unlike Vite, where it is kept as a no-op,
 * `decline()` refuses updates of this module (webpack's self-decline: the reload path).
 * `invalidate()` propagates this module's update to its importers; `retire(cb)` is hotdeploy's own.
 */
export function createEsmHot(ctx: EsmHotContext, state: HotState, callbacks: EsmCallbacks): EsmHotApi {
  const acceptDeps = (deps: string[], fn: EsmCallbacks['accept'][number]['fn']): void => {
    for (const rel of deps) {
      if (rel === ctx.rel) state.selfAccepted = true;
      else state.acceptedDeps.set(rel, { callback: undefined, errorHandler: undefined });
    }
    callbacks.accept.push({ deps, fn });
  };
  return {
    get data() {
      return ctx.data;
    },
    accept(deps, callback) {
      if (deps === undefined || typeof deps === 'function') {
        const fn = deps;
        acceptDeps([ctx.rel], ([module]) => fn?.(module));
      } else if (typeof deps === 'string') {
        const fn = callback as ((module: ModuleNamespace | undefined) => void) | undefined;
        acceptDeps([ctx.resolve(deps)], ([module]) => fn?.(module));
      } else if (Array.isArray(deps)) {
        const fn = callback as ((modules: (ModuleNamespace | undefined)[]) => void) | undefined;
        acceptDeps(deps.map((d: string) => ctx.resolve(d)), (modules) => fn?.(modules));
      } else {
        throw new TypeError('import.meta.hot.accept() takes a dependency, an array of them, or a callback');
      }
    },
    dispose(handler) {
      state.disposeHandlers.length = 0;
      state.disposeHandlers.push(handler as (data: Record<string, unknown>) => void);
    },
    prune(handler) {
      callbacks.prune = handler;
    },
    decline() {
      state.selfDeclined = true;
    },
    invalidate() {
      state.selfInvalidated = true;
      ctx.invalidate(ctx.rel);
    },
    retire(handler) {
      state.retireHandlers.push(handler);
    },
  };
}
