import { isBuiltin } from 'node:module';
import path from 'node:path';
import { HotError } from '../errors.js';
import type { AppManifest, AppMode, HotStatus } from '../messages.js';
import { AppPaths } from './app-paths.js';
import { fakeParent, loader, type CjsModule } from './cjs.js';
import type { FileIndex } from './file-index.js';
import { ModuleGraph } from './graph.js';
import { createHot, newHotState, type HotApi, type HotState, type StatusHandler } from './hot-api.js';
import { isRelativeRequest, resolveRelative } from './resolve.js';
import { fromRel, liveModules, moveOwner, retiredModules, toRel, type Owner } from './registry.js';
import { sweepPathCache } from './sweep.js';

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
  private readonly serial = ++serials;
  /** Where the app's code came from, and what resolved how (app-paths.ts). */
  private readonly paths = new AppPaths();
  private statusValue: HotStatus = 'idle';
  private readonly statusHandlers = new Map<StatusHandler, string>();

  constructor(
    readonly name: string,
    dir: string,
    manifest: AppManifest,
    readonly mode: AppMode,
    private readonly chdir: boolean,
    private readonly onInvalidate: () => void,
    private readonly onError: (err: unknown, where: string) => void,
  ) {
    this.dir = dir;
    this.manifest = manifest;
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
    liveModules.set(module, this);
  }

  plainCommonJs(filename: string): boolean {
    return !this.manifest.esm && this.paths.plainCommonJs(this.dir, filename);
  }

  loadFailed(module: CjsModule, rel: string): void {
    const record = this.records.get(rel);
    if (record?.module !== module) return;
    this.paths.forget(record.loadedFrom);
    this.records.delete(rel);
    this.graph.dropOutgoing(rel);
    liveModules.delete(module);
  }

  afterRequire(parent: CjsModule, request: string): void {
    const record = this.records.get(toRel(this.dir, parent.filename));
    if (record?.module !== parent) return;
    let target = record.deps.get(request);
    if (target === undefined) {
      try {
        target = this.classify(this.dir, loader._resolveFilename(request, parent));
      } catch {
        return;
      }
      record.deps.set(request, target);
    }
    if (isRel(target)) this.graph.addEdge(record.rel, target);
  }

  /** Release directories live modules were evaluated from (their `__dirname`): not to be pruned. */
  releasesInUse(): string[] {
    return this.paths.releasesInUse(this.dir);
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

  /**
   * Requires the current version of `rel` on behalf of `parent`, by the request string the parent
   * itself used: Node keys its relativeResolveCache by request, so an absolute path (new for every
   * release) would add an entry per update.
   */
  requireFor(parent: ModuleRecord, rel: string): unknown {
    for (const [request, target] of parent.deps) if (target === rel) return parent.module.require(request);
    return parent.module.require(fromRel(this.dir, rel));
  }

  /** `request` resolved from `parentRel` as if the app ran from release `dir` (for the diff). */
  resolveIn(dir: string, parentRel: string, request: string): string {
    const file = fromRel(dir, parentRel);
    const found = isRelativeRequest(request) ? resolveRelative(path.dirname(file), request) : undefined;
    return this.classify(dir, found ?? loader._resolveFilename(request, fakeParent(file, path.dirname(file))));
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
    return filename.startsWith(root + path.sep) ? toRel(root, filename) : filename;
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

  private invalidate(rel: string): void {
    if (!this.records.has(rel)) return;
    this.invalidated.add(rel);
    this.onInvalidate();
  }

  /**
   * Takes a module out of the app: out of `require.cache`, out of every parent's `children` (the
   * leak of shared/seeds/000), out of the graph and the records. Old code still holding it resolves
   * its lazy requires in the current release from now on (hooks.ts).
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
    this.graph.dropOutgoing(rel);
    liveModules.delete(module);
    retiredModules.set(module, { owner: this, rel });
  }

  /**
   * Makes `to` the app's release: every live module is re-registered under its path there, so
   * Node's own resolution from unchanged modules (and their lazy requires) lands in the new release;
   * with `chdir`, the working directory follows. Node's path cache forgets the old release later,
   * off the update's timed path.
   */
  moveTo(to: string, manifest: AppManifest, index: FileIndex, nodeModulesChanged: boolean): void {
    const from = this.dir;
    this.manifest = manifest;
    this.index = index;
    if (nodeModulesChanged) this.paths.forgetBare();
    if (to === from) return;
    this.rekey(to);
    moveOwner(this, from);
    if (this.chdir) process.chdir(to);
    setImmediate(() => sweepPathCache(from));
  }

  private rekey(to: string): void {
    const pathsByDir = new Map<string, string[]>();
    for (const { rel, module } of this.records.values()) {
      const file = fromRel(to, rel);
      if (loader._cache[module.filename] === module) delete loader._cache[module.filename];
      loader._cache[file] = module;
      module.filename = file;
      if (module.id !== '.') module.id = file;
      const dir = path.dirname(file);
      let paths = pathsByDir.get(dir);
      if (!paths) pathsByDir.set(dir, (paths = loader._nodeModulePaths(dir)));
      module.paths = paths.slice();
    }
    this.dir = to;
  }
}

/** A dependency target inside the app (not `node:` and not an absolute path outside it). */
export function isRel(target: string): boolean {
  return !target.startsWith('node:') && !path.isAbsolute(target);
}
