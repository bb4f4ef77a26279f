/**
 * Types of `module.hot` for TypeScript apps hosted by hotdeploy (issue 2, item 11).
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

declare global {
  namespace NodeJS {
    interface Module {
      /** hotdeploy's hot module replacement API; undefined when not hosted by hotdeploy. */
      hot?: Hot;
    }
  }
}
