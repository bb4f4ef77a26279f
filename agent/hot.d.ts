/**
 * Types of `module.hot` and `import.meta.hot` for TypeScript apps hosted by hotdeploy.
 *
 *   import type {} from 'hotdeploy/hot';            // or: /// <reference types="hotdeploy/hot" />
 *   if (module.hot) module.hot.accept('./router', () => { router = require('./router'); });
 *
 * Hand-written (the runtime's own types are internal): webpack's HMR API with webpack's meanings,
 * plus `retire`. `module.hot` is undefined when the app runs without hotdeploy, hence optional.
 */

export type HotStatus = 'idle' | 'check' | 'prepare' | 'ready' | 'dispose' | 'apply' | 'abort' | 'fail';

export interface HotAcceptErrorContext {
  /** The accepting module, as a path relative to the release root. */
  moduleId: string;
  /** The dependency whose update failed (accept(dep, cb, errHandler)). */
  dependencyId?: string;
  /** The module object that failed to evaluate (accept(errHandler)). */
  module?: unknown;
}

export type HotAcceptErrorHandler = (err: unknown, context: HotAcceptErrorContext) => void;
export type HotDisposeHandler = (data: Record<string, unknown>) => void;
export type HotStatusHandler = (status: HotStatus) => void | Promise<void>;

export interface Hot {
  /** What the previous version's dispose handlers stored; undefined on the first load. */
  readonly data: Record<string, unknown> | undefined;
  /** False once this version of the module has been disposed. */
  readonly active: boolean;
  /** Accept updates of these dependencies (resolved as `require` would from this module). */
  accept(dependencies: string | string[], callback?: (outdatedDependencies: string[]) => void, errorHandler?: HotAcceptErrorHandler): void;
  /** Accept updates of this module itself: it is required again; errHandler gets an evaluation error. */
  accept(errorHandler?: HotAcceptErrorHandler): void;
  /** Refuse updates of these dependencies, or of this module: the update aborts (reload path). */
  decline(dependencies?: string | string[]): void;
  /** Runs before the new version evaluates; fill `data` to hand state over. */
  dispose(handler: HotDisposeHandler): void;
  addDisposeHandler(handler: HotDisposeHandler): void;
  removeDisposeHandler(handler: HotDisposeHandler): void;
  /**
   * hotdeploy: runs once every request that started before this version was replaced has finished
   * (or the drain timeout passed) — close here what old in-flight code may still use.
   */
  retire(handler: () => void | Promise<void>): void;
  /** Marks this module outdated and starts an update of the app to its current release. */
  invalidate(): void;
  status(): HotStatus;
  status(handler: HotStatusHandler): void;
  addStatusHandler(handler: HotStatusHandler): void;
  removeStatusHandler(handler: HotStatusHandler): void;
}

/** A module namespace (`import * as ns`): what an ES module's accept callbacks receive. */
export type HotModuleNamespace = Record<string, any>;
export type HotDataHandler = (data: Record<string, any>) => void | Promise<void>;

/**
 * `import.meta.hot` in ES modules, with Vite's meanings: a new version is a new module instance,
 * and the modules that import it statically keep the old one — accept callbacks get the new
 * namespace. Undefined when the app runs without hotdeploy, or on a Node line without
 * `module.registerHooks` (every change then takes the reload path).
 */
export interface ImportMetaHot {
  /** The same object for every version of this module: fill it in `dispose`, read it in the next version. */
  readonly data: Record<string, any>;
  /** Accept updates of this module: it is imported anew; the old version's callback gets the new namespace. */
  accept(callback?: (module: HotModuleNamespace | undefined) => void): void;
  /** Accept updates of a dependency (a specifier as this module imports it): the callback gets its new namespace. */
  accept(dependency: string, callback?: (module: HotModuleNamespace | undefined) => void): void;
  /** Accept updates of several: the callback gets their namespaces, undefined for those that did not change. */
  accept(dependencies: readonly string[], callback?: (modules: (HotModuleNamespace | undefined)[]) => void): void;
  /** Runs before the new version is imported (the last handler given); fill `data` to hand state over. */
  dispose(handler: HotDataHandler): void;
  /** Runs when an update leaves this module imported by no module (the last handler given). */
  prune(handler: HotDataHandler): void;
  /** Refuse updates of this module: the update takes the reload path (Vite keeps `decline` as a no-op). */
  decline(): void;
  /** Give up this module's own accept: the update propagates to its importers. */
  invalidate(message?: string): void;
  /** hotdeploy: runs once the requests that started on this version have finished (or the drain timeout). */
  retire(handler: () => void | Promise<void>): void;
}

declare global {
  interface ImportMeta {
    /** hotdeploy's hot module replacement API for ES modules; undefined when not hosted by hotdeploy. */
    hot?: ImportMetaHot;
  }
  namespace NodeJS {
    interface Module {
      /** hotdeploy's hot module replacement API; undefined when not hosted by hotdeploy. */
      hot?: Hot;
    }
  }
}
