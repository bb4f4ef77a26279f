import { isBuiltin } from 'node:module';
import path from 'node:path';
import { types } from 'node:util';
import { HotError } from '../errors.js';
import type { AppManifest, AppMode, HotStatus } from '../messages.js';
import { AppPaths } from './app-paths.js';
import { fakeParent, loader, type CjsModule } from './cjs.js';
import { addEsmApp, esmHotSupported, removeEsmApp } from './esm-hooks.js';
import { EsmModules } from './esm-modules.js';
import { resolveImportIn } from './esm-resolve.js';
import type { EsmRetiredLimit } from './esm-plan.js';
import type { FileIndex } from './file-index.js';
import { ModuleGraph } from './graph.js';
import { createHot, newHotState, type HotApi, type HotState, type StatusHandler } from './hot-api.js';
import { isRelativeRequest, resolveRelative } from './resolve.js';
import { fromRel, liveModules, moveOwner, ownerOf, retiredModules, toRel, type Owner } from './registry.js';
import { sweepPathCache } from './sweep.js';

/** Where an update moves the app: the new release, what it holds, and what changed about its paths. */
export interface ReleaseMove {
  readonly to: string;
  readonly manifest: AppManifest;
  readonly index: FileIndex;
  /** A file under node_modules changed, appeared or went: forget how bare requests resolved. */
  readonly nodeModulesChanged: boolean;
  /** A path appeared or went or a package.json changed: requests may resolve anew (`moveTo`). */
  readonly pathsChanged: boolean;
}

export interface ModuleRecord {
  readonly rel: string;
  readonly module: CjsModule;
  readonly hot: HotState;
  readonly api: HotApi;
  /** request → what it resolved to: a relative path (the app's), an absolute path, or `node:id`. */
  readonly deps: Map<string, string>;
  /** The release its code was evaluated from: its `__dirname` stays there. */
  readonly loadedFrom: string;
}

let serials = 0;

export interface AppStateOptions {
  name: string;
  /** The release the app starts on (a realpath). */
  dir: string;
  manifest: AppManifest;
  mode: AppMode;
  /** Whether `process.cwd()` follows the current release. */
  chdir: boolean;
  /** A loaded module called `hot.invalidate()`: an update to the current release is to follow. */
  onInvalidate: () => void;
  /** An app's handler threw where the runtime called it (a status handler, ...). */
  onError: (err: unknown, where: string) => void;
}

/** One hosted app's modules, graph and HMR status: what the hooks feed and an update reads. */
export class AppState implements Owner {
  dir: string;
  manifest: AppManifest;
  index: FileIndex | undefined;
  readonly records = new Map<string, ModuleRecord>();
  readonly graph = new ModuleGraph();
  /** `hot.data` for the next version of a disposed module (webpack resets it every apply). */
  pendingData = new Map<string, Record<string, unknown>>();
  readonly invalidated = new Set<string>();
  /**
   * A CommonJS app's modules that are ES modules loaded by `require(esm)`. Without the ES module
   * hooks (a CommonJS app's worker has none) the runtime sees neither their versions nor what they
   * import: a change to them, or to code it has not seen loaded, takes the reload path (esm-plan.ts).
   */
  readonly requiredEsm = new Set<string>();
  /** An ES module app's modules, where the Node line can hot-swap them (esm-hooks.ts). */
  readonly esm: EsmModules | undefined;
  /** `HostAppOptions.esmRetiredLimit`: overrides the release's setting and the defaults. */
  esmRetiredLimit: Partial<EsmRetiredLimit> | undefined;
  private readonly serial = ++serials;
  /** The release the last `rekey` moved every live module's cache key to (the first release before any). */
  private keyedIn: string;
  /** Where the app's code came from, and what resolved how (app-paths.ts). */
  private readonly paths = new AppPaths();
  /**
   * What a request resolved to, by the key Node's relativeResolveCache uses (`module.path`, our
   * stable `pathKey`, and the request): see `afterRequire`. Bounded by the app's directories and
   * requests, whatever the number of updates.
   */
  private readonly resolvedBy = new Map<string, string>();
  private statusValue: HotStatus = 'idle';
  private readonly statusHandlers = new Map<StatusHandler, string>();

  readonly name: string;
  readonly mode: AppMode;
  private readonly chdir: boolean;
  private readonly onInvalidate: () => void;
  private readonly onError: (err: unknown, where: string) => void;

  constructor({ name, dir, manifest, mode, chdir, onInvalidate, onError }: AppStateOptions) {
    this.name = name;
    this.mode = mode;
    this.chdir = chdir;
    this.onInvalidate = onInvalidate;
    this.onError = onError;
    this.dir = dir;
    this.keyedIn = dir;
    this.manifest = manifest;
    this.esm = manifest.esm && esmHotSupported ? new EsmModules(this) : undefined;
    if (this.esm) addEsmApp(this.esm, (file) => ownerOf(file)?.owner.esm);
  }

  /** The app closes: its ES module URLs are forgotten, and the last ES module app removes the hooks. */
  closeEsm(): void {
    if (this.esm) removeEsmApp(this.esm);
  }

  /** Whether `rel` is a loaded module of the app, CommonJS or ES. */
  isLoaded(rel: string): boolean {
    return this.records.has(rel) || (this.esm?.records.has(rel) ?? false);
  }

  loadedRels(): string[] {
    return [...this.records.keys(), ...(this.esm?.records.keys() ?? [])];
  }

  hotOf(rel: string): HotState | undefined {
    return this.records.get(rel)?.hot ?? this.esm?.records.get(rel)?.hot;
  }

  get status(): HotStatus {
    return this.statusValue;
  }

  get entry(): string {
    return this.manifest.entry;
  }

  /** webpack's setStatus: every handler is called; async ones are awaited by the check phases. */
  async setStatus(status: HotStatus): Promise<void> {
    this.statusValue = status;
    const results = [...this.statusHandlers.keys()].map(async (handler) => {
      try {
        await handler(status);
      } catch (err) {
        this.onError(err, 'status handler');
      }
    });
    await Promise.all(results);
  }

  /**
   * Status handlers go with the module that added them: webpack keeps them forever, which here would
   * grow with every update of a module that registers one when it evaluates.
   */
  dropStatusHandlersOf(rel: string): void {
    for (const [handler, owner] of this.statusHandlers) if (owner === rel) this.statusHandlers.delete(handler);
  }

  beforeLoad(module: CjsModule, rel: string): void {
    const hot = newHotState();
    const data = this.pendingData.get(rel);
    this.pendingData.delete(rel);
    const api = createHot({
      rel,
      resolve: (request) => this.resolveDep(module, rel, request),
      status: () => this.statusValue,
      addStatusHandler: (handler, owner) => this.statusHandlers.set(handler, owner),
      removeStatusHandler: (handler) => this.statusHandlers.delete(handler),
      invalidate: (r) => this.invalidate(r),
    }, hot, data);
    module.hot = api;
    module.path = this.pathKey(rel);
    this.records.set(rel, { rel, module, hot, api, deps: new Map(), loadedFrom: this.dir });
    this.paths.loaded(this.dir);
    liveModules.set(module, { owner: this, rel });
  }

  plainCommonJs(filename: string): boolean {
    return !this.manifest.esm && this.paths.plainCommonJs(this.dir, filename);
  }

  loaded(module: CjsModule, rel: string): void {
    if (!this.manifest.esm && this.records.get(rel)?.module === module && types.isModuleNamespaceObject(module.exports)) {
      this.requiredEsm.add(rel);
    }
  }

  loadFailed(module: CjsModule, rel: string): void {
    const record = this.records.get(rel);
    if (record?.module !== module) return;
    this.paths.forget(record.loadedFrom);
    this.records.delete(rel);
    this.graph.dropOutgoing(rel);
    liveModules.delete(module);
  }

  resolved(parent: CjsModule, rel: string, request: string, filename: string): void {
    const record = this.records.get(rel);
    if (record?.module !== parent || record.deps.has(request)) return;
    const target = this.classify(this.dir, filename);
    record.deps.set(request, target);
    this.resolvedBy.set(`${parent.path}\0${request}`, target);
  }

  /**
   * Records the edge. The target is usually known from the resolution just made (`resolved`); but
   * when a re-evaluated module requires an unchanged one, Node answers from its relativeResolveCache
   * without resolving, and the target is the one resolved last under the same key — trusted only if
   * that module's exports are what the require returned, otherwise resolved again.
   */
  afterRequire(parent: CjsModule, rel: string, request: string, exports: unknown): void {
    const record = this.records.get(rel);
    if (record?.module !== parent) return;
    let target = record.deps.get(request);
    if (target === undefined) {
      target = this.cachedTarget(parent, request, exports);
      if (target === undefined) {
        try {
          target = this.classify(this.dir, loader._resolveFilename(request, parent));
        } catch {
          return;
        }
      }
      record.deps.set(request, target);
    }
    if (isRel(target)) this.graph.addEdge(record.rel, target);
  }

  private cachedTarget(parent: CjsModule, request: string, exports: unknown): string | undefined {
    const target = this.resolvedBy.get(`${parent.path}\0${request}`);
    if (target === undefined || target.startsWith('node:')) return undefined;
    const module = isRel(target) ? this.records.get(target)?.module : loader._cache[target];
    return module !== undefined && module.exports === exports ? target : undefined;
  }

  /** Release directories live modules were evaluated from (their `__dirname`): not to be pruned. */
  releasesInUse(): string[] {
    const cjs = this.paths.releasesInUse(this.dir);
    return this.esm ? [...new Set([...cjs, ...this.esm.releasesInUse()])].sort() : cjs;
  }

  bareTarget(from: string, request: string): string | undefined {
    return this.paths.bareTarget(this.dir, from, request);
  }

  rememberBare(from: string, request: string, filename: string): void {
    this.paths.rememberBare(this.dir, from, request, filename);
  }

  toCurrent(file: string, alsoFrom?: string): string {
    return this.paths.toCurrent(this.dir, file, alsoFrom);
  }

  liveKey(file: string): string {
    if (!file.startsWith(this.dir + path.sep)) return file;
    const module = this.records.get(toRel(this.dir, file))?.module;
    // Not when the app dropped it from require.cache itself: then the file loads anew, here.
    return module !== undefined && loader._cache[module.filename] === module ? module.filename : file;
  }

  /**
   * Requires the current version of `rel` on behalf of `parent`, by the request string the parent
   * itself used: Node keys its relativeResolveCache by request, so an absolute path (new for every
   * release) would add an entry per update.
   */
  requireFor(parent: ModuleRecord, rel: string): unknown {
    for (const [request, target] of parent.deps) if (target === rel) return parent.module.require(request);
    return parent.module.require(fromRel(this.dir, rel));
  }

  /** `request` resolved from `parentRel` as if the app ran from the release `index` lists (for the diff). */
  resolveIn(index: FileIndex, parentRel: string, request: string): string {
    if (this.esm?.records.has(parentRel)) return resolveImportIn(index, parentRel, request);
    const file = fromRel(index.dir, parentRel);
    const found = isRelativeRequest(request) ? resolveRelative(path.dirname(file), request, index) : undefined;
    return this.classify(index.dir, found ?? loader._resolveFilename(request, fakeParent(file, path.dirname(file))));
  }

  /**
   * `module.path` of the app's modules: a stable key per app and module directory instead of a
   * directory of one release. Node uses `module.path` only to key its private relativeResolveCache
   * (`${parent.path}\0${request}`, lib/internal/modules/cjs/loader.js); with a real release path
   * that cache would keep entries for every release ever loaded. A stale entry self-heals: it names
   * an evicted file, which Node finds missing from `require.cache` and resolves again.
   */
  private pathKey(rel: string): string {
    return `hotdeploy:${this.serial}:${this.name}/${path.posix.dirname(rel)}`;
  }

  private classify(root: string, filename: string): string {
    if (isBuiltin(filename)) return filename.startsWith('node:') ? filename : `node:${filename}`;
    if (filename.startsWith(root + path.sep)) return toRel(root, filename);
    if (root !== this.dir) return filename;
    // A live module's key (liveKey): under the release it was evaluated from or last re-keyed to.
    if (filename.startsWith(this.keyedIn + path.sep)) return toRel(this.keyedIn, filename);
    return this.paths.relInLoaded(filename) ?? filename;
  }

  private resolveDep(module: CjsModule, rel: string, request: string): string | undefined {
    let target: string;
    try {
      target = this.classify(this.dir, loader._resolveFilename(request, module));
    } catch (err) {
      throw new HotError('HOT_ERR_ACCEPT', `${JSON.stringify(request)} from ${rel}`, { cause: err });
    }
    return isRel(target) ? target : undefined;
  }

  /** `hot.invalidate()` of a loaded module: an update to the current release follows. */
  invalidate(rel: string): void {
    if (!this.isLoaded(rel)) return;
    this.invalidated.add(rel);
    this.onInvalidate();
  }

  /**
   * Takes a module out of the app: out of `require.cache`, out of every parent's `children` (left
   * there, every old version stays reachable), out of the graph and the records. Old code still
   * holding it resolves its lazy requires in the current release from now on (hooks.ts).
   */
  evict(record: ModuleRecord): void {
    const { module, rel } = record;
    if (loader._cache[module.filename] === module) delete loader._cache[module.filename];
    for (const parentRel of this.graph.parentsOf(rel)) {
      const children = this.records.get(parentRel)?.module.children;
      const i = children ? children.indexOf(module) : -1;
      if (i >= 0) children!.splice(i, 1);
    }
    // Its own children list would chain every older version of its dependencies together.
    module.children = [];
    this.paths.forget(record.loadedFrom);
    this.records.delete(rel);
    this.requiredEsm.delete(rel);
    this.graph.dropOutgoing(rel);
    liveModules.delete(module);
    retiredModules.set(module, { owner: this, rel });
  }

  /**
   * Makes `to` the app's release; with `chdir`, the working directory follows. Node's path cache
   * forgets the old release later, off the update's timed path.
   *
   * Live modules stay in `require.cache` under the keys they have (their `__dirname` stays in the
   * release they were evaluated from anyway): the `_resolveFilename` hook resolves their requests in
   * the current release and answers a live module's own key for its file (`liveKey`), so new code
   * shares the unchanged instances. That is constant time, and right as long as every request
   * resolves as before. When a path appeared or went or a package.json changed, every live module is
   * re-keyed into the new release (`rekey`): Node's relativeResolveCache (`Module._load`, keyed by
   * `module.path` + request, which it trusts while the filename it names is in `require.cache`)
   * would otherwise keep answering the old resolution.
   */
  moveTo(move: ReleaseMove): void {
    const from = this.dir;
    this.manifest = move.manifest;
    this.index = move.index;
    if (move.nodeModulesChanged) this.paths.forgetBare();
    if (move.nodeModulesChanged || move.pathsChanged) this.esm?.forgetResolutions();
    if (move.to === from) return;
    this.dir = move.to;
    if (move.pathsChanged) this.rekey();
    moveOwner(this, from);
    if (this.chdir) process.chdir(move.to);
    setImmediate(() => sweepPathCache(from));
  }

  /** Every live module under its path in the current release: a cache key, `filename`, `id`, `paths`. */
  private rekey(): void {
    const pathsByDir = new Map<string, string[]>();
    for (const { rel, module } of this.records.values()) {
      const file = fromRel(this.dir, rel);
      if (loader._cache[module.filename] === module) delete loader._cache[module.filename];
      loader._cache[file] = module;
      module.filename = file;
      if (module.id !== '.') module.id = file;
      const dir = path.dirname(file);
      let paths = pathsByDir.get(dir);
      if (!paths) pathsByDir.set(dir, (paths = loader._nodeModulePaths(dir)));
      module.paths = paths.slice();
    }
    this.keyedIn = this.dir;
  }
}

/** A dependency target inside the app (not `node:` and not an absolute path outside it). */
export function isRel(target: string): boolean {
  return !target.startsWith('node:') && !path.isAbsolute(target);
}
