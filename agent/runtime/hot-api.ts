import type { HotStatus } from '../messages.js';

export type AcceptCallback = (outdatedDependencies: string[]) => void;
export type AcceptErrorHandler = (err: unknown, context: { moduleId: string; dependencyId?: string; module?: unknown }) => void;
export type DisposeHandler = (data: Record<string, unknown>) => void;
export type StatusHandler = (status: HotStatus) => void | Promise<void>;
export type RetireHandler = () => void | Promise<void>;

/** What propagation and apply read from a module's `module.hot` (webpack's `_selfAccepted` & co). */
export interface HotState {
  selfAccepted: boolean;
  selfAcceptErrorHandler: AcceptErrorHandler | undefined;
  selfDeclined: boolean;
  selfInvalidated: boolean;
  acceptedDeps: Map<string, { callback: AcceptCallback | undefined; errorHandler: AcceptErrorHandler | undefined }>;
  declinedDeps: Set<string>;
  disposeHandlers: DisposeHandler[];
  retireHandlers: RetireHandler[];
}

/** What a module's `module.hot` needs from its app. */
export interface HotContext {
  readonly rel: string;
  /** `request` resolved as `require` would from this module, as a relative path (undefined: not the app's). */
  resolve(request: string): string | undefined;
  status(): HotStatus;
  addStatusHandler(handler: StatusHandler, rel: string): void;
  removeStatusHandler(handler: StatusHandler): void;
  invalidate(rel: string): void;
}

/** The public `module.hot` (types for app authors: agent/hot.d.ts). */
export interface HotApi {
  readonly data: Record<string, unknown> | undefined;
  active: boolean;
  accept(dep?: string | string[] | AcceptErrorHandler, callback?: AcceptCallback, errorHandler?: AcceptErrorHandler): void;
  decline(dep?: string | string[]): void;
  dispose(handler: DisposeHandler): void;
  addDisposeHandler(handler: DisposeHandler): void;
  removeDisposeHandler(handler: DisposeHandler): void;
  retire(handler: RetireHandler): void;
  invalidate(): void;
  status(handler?: StatusHandler): HotStatus | undefined;
  addStatusHandler(handler: StatusHandler): void;
  removeStatusHandler(handler: StatusHandler): void;
}

export function newHotState(): HotState {
  return {
    selfAccepted: false, selfAcceptErrorHandler: undefined, selfDeclined: false, selfInvalidated: false,
    acceptedDeps: new Map(), declinedDeps: new Set(), disposeHandlers: [], retireHandlers: [],
  };
}

/** Builds one module's `module.hot`, with webpack's meanings (HotModuleReplacement.runtime.js). */
export function createHot(ctx: HotContext, state: HotState, data: Record<string, unknown> | undefined): HotApi {
  const deps = (dep: string | string[]): string[] =>
    (Array.isArray(dep) ? dep : [dep]).map((request) => ctx.resolve(request)).filter((r): r is string => r !== undefined);
  const hot: HotApi = {
    data,
    active: true,
    accept(dep, callback, errorHandler) {
      if (dep === undefined || typeof dep === 'function') {
        state.selfAccepted = true;
        state.selfAcceptErrorHandler = typeof dep === 'function' ? dep : undefined;
        return;
      }
      for (const rel of deps(dep)) state.acceptedDeps.set(rel, { callback, errorHandler });
    },
    decline(dep) {
      if (dep === undefined) state.selfDeclined = true;
      else for (const rel of deps(dep)) state.declinedDeps.add(rel);
    },
    dispose(handler) {
      state.disposeHandlers.push(handler);
    },
    addDisposeHandler(handler) {
      state.disposeHandlers.push(handler);
    },
    removeDisposeHandler(handler) {
      const i = state.disposeHandlers.indexOf(handler);
      if (i >= 0) state.disposeHandlers.splice(i, 1);
    },
    retire(handler) {
      state.retireHandlers.push(handler);
    },
    invalidate() {
      state.selfInvalidated = true;
      ctx.invalidate(ctx.rel);
    },
    // webpack: status() returns the status; status(fn) registers a handler.
    status(handler) {
      if (!handler) return ctx.status();
      ctx.addStatusHandler(handler, ctx.rel);
      return undefined;
    },
    addStatusHandler(handler) {
      ctx.addStatusHandler(handler, ctx.rel);
    },
    removeStatusHandler(handler) {
      ctx.removeStatusHandler(handler);
    },
  };
  return hot;
}
