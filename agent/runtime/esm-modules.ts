import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HotError } from '../errors.js';
import type { EsmApp, NextResolve, ResolveContext, Resolved } from './esm-hooks.js';
import { registerUrl } from './esm-hooks.js';
import { createEsmHot, newEsmCallbacks, type EsmCallbacks, type EsmHotApi, type ModuleNamespace } from './esm-hot.js';
import { EsmResolution, fileHref } from './esm-resolve.js';
import type { FileIndex } from './file-index.js';
import type { ModuleGraph } from './graph.js';
import { newHotState, type HotState } from './hot-api.js';
import { fromRel, toRel } from './registry.js';

/** What `EsmModules` needs from its app (`AppState`). */
export interface EsmHost {
  /** The current release root (a realpath). */
  readonly dir: string;
  /** A release's file index, once an update read it: the current release's from the update's apply on. */
  readonly index: FileIndex | undefined;
  readonly graph: ModuleGraph;
  invalidate(rel: string): void;
}

/** A live ES module version of the app. */
export interface EsmRecord {
  readonly rel: string;
  readonly url: string;
  readonly hot: HotState;
  readonly callbacks: EsmCallbacks;
  readonly api: EsmHotApi;
  /** The release its code was evaluated from: its `import.meta.url` stays there. */
  readonly loadedFrom: string;
  /** Loaded by CommonJS `require`: a change to it takes the reload path. */
  readonly required: boolean;
}

/** A module instance the app's imports resolve to: an ES module, or the ESM facade of a CommonJS one. */
interface Version {
  readonly url: string;
  bytes: number;
  /** Specifier → relative path, as the resolve hook answered this version's imports. */
  readonly deps: Map<string, string>;
  required: boolean;
  /** Which new version it is (0: loaded before the first update). */
  readonly serial: number;
}

/** How much the app's retired module versions hold: Node never frees an ES module record. */
export interface Retired {
  versions: number;
  bytes: number;
}

/** Releases first hosted without a version query: a release hosted again in this process needs one. */
const hostedPlain = new Set<string>();

/**
 * One app's ES modules: which URL each module identity (relative path) is live under, their
 * `import.meta.hot`, and what the versions an update replaced hold. A module is re-evaluated by
 * importing it under a new URL (`?hd=<n>`): Node's loader keys module records by URL, so the new
 * version is a new instance while the old one — still bound into old code — stays as it was.
 */
export class EsmModules implements EsmApp {
  readonly records = new Map<string, EsmRecord>();
  readonly retired: Retired = { versions: 0, bytes: 0 };
  /** Identity → the version the app's imports resolve to now. */
  private readonly live = new Map<string, Version>();
  /** Vite's `hot.data`: one object per module identity, handed from version to version. */
  private readonly data = new Map<string, Record<string, unknown>>();
  /** Release directory → how many live ES modules were evaluated from it (their `import.meta.url`). */
  private readonly loadedFrom = new Map<string, number>();
  private readonly resolution = new EsmResolution();
  private readonly plain: boolean;
  private serial = 0;

  constructor(private readonly host: EsmHost) {
    this.plain = !hostedPlain.has(host.dir);
    hostedPlain.add(host.dir);
  }

  /** The URL `rel` is imported under: its live version's, or a new version's in the current release. */
  urlFor(rel: string): string {
    const live = this.live.get(rel);
    if (live) return live.url;
    const file = fromRel(this.host.dir, rel);
    const href = fileHref(this.host.dir, rel, file);
    const url = this.plain && this.serial === 0 ? href : `${href}?hd=${++this.serial}`;
    this.live.set(rel, { url, bytes: 0, deps: new Map(), required: false, serial: this.serial });
    registerUrl(url, this, rel, file);
    return url;
  }

  /** Imports the live (or a new) version of `rel`, from the runtime. */
  async importCurrent(rel: string): Promise<ModuleNamespace> {
    return (await import(this.urlFor(rel))) as ModuleNamespace;
  }

  /**
   * An update begins: from now on a module without a live version gets a version query. Returns
   * the mark `retireSince` takes.
   */
  beginUpdate(): number {
    this.serial ||= 1;
    return this.serial;
  }

  /**
   * After a failed evaluation: the versions made since `mark` are retired unrun or errored (Node
   * keeps an errored module record and answers every later import of its URL with the same
   * error), so the next update imports them under new URLs.
   */
  retireSince(mark: number): void {
    for (const [rel, live] of [...this.live]) {
      if (live.serial <= mark) continue;
      const record = this.records.get(rel);
      if (record?.url === live.url) {
        this.records.delete(rel);
        this.forgetLoaded(record.loadedFrom);
      }
      this.host.graph.dropOutgoing(rel);
      this.retire(rel);
    }
  }

  isLive(rel: string): boolean {
    return this.live.has(rel);
  }

  /**
   * `specifier` imported by (a version of) `rel`: resolved from `rel`'s path in the current release,
   * from what the file index and earlier resolutions tell when they can (esm-resolve.ts), else by
   * Node; a module of the app answers its live version's URL, or a new version's.
   */
  resolve(rel: string, specifier: string, context: ResolveContext, next: NextResolve): Resolved {
    const index = this.host.index?.dir === this.host.dir ? this.host.index : undefined;
    const known = this.resolution.known(index, rel, specifier);
    if (known) {
      const url = known.target === undefined ? known.url : this.importOf(rel, specifier, known.target);
      return { url, format: known.format, shortCircuit: true };
    }
    const from = fileHref(this.host.dir, rel, fromRel(this.host.dir, rel));
    const resolved = next(this.toCurrent(specifier), { ...context, parentURL: from });
    const target = resolved.url.startsWith('file:') ? this.relOf(fileURLToPath(resolved.url)) : undefined;
    this.resolution.learn(rel, specifier, target, resolved);
    return target === undefined ? resolved : { ...resolved, url: this.importOf(rel, specifier, target) };
  }

  resolveVersion(rel: string, url: string, context: ResolveContext, next: NextResolve): Resolved {
    const format = this.resolution.formatOf(rel);
    if (format !== undefined) return { url, format, shortCircuit: true };
    const resolved = next(url, context);
    this.resolution.learn(rel, url, rel, resolved);
    return resolved;
  }

  /** What `rel`'s imports resolved to (specifier → relative path), for an update's plan. */
  depsOf(rel: string): ReadonlyMap<string, string> | undefined {
    return this.records.has(rel) ? this.live.get(rel)?.deps : undefined;
  }

  /** A package.json, the set of paths or node_modules changed: imports resolve by Node again. */
  forgetResolutions(): void {
    this.resolution.forget();
  }

  /** Records the edge `rel` → `target` and answers the URL the import gets. */
  private importOf(rel: string, specifier: string, target: string): string {
    this.live.get(rel)?.deps.set(specifier, target);
    this.host.graph.addEdge(rel, target);
    return this.urlFor(target);
  }

  loading(rel: string, url: string, bytes: number): void {
    const live = this.live.get(rel);
    if (live?.url === url) live.bytes = bytes;
  }

  evaluating(rel: string, url: string): EsmHotApi | undefined {
    const live = this.live.get(rel);
    if (live?.url !== url) return undefined;
    let data = this.data.get(rel);
    if (!data) this.data.set(rel, (data = {}));
    const hot = newHotState();
    const callbacks = newEsmCallbacks();
    const api = createEsmHot({
      rel, data,
      resolve: (specifier) => this.resolveDep(rel, specifier),
      invalidate: (r) => this.host.invalidate(r),
    }, hot, callbacks);
    this.records.set(rel, { rel, url, hot, callbacks, api, loadedFrom: this.host.dir, required: live.required });
    this.loadedFrom.set(this.host.dir, (this.loadedFrom.get(this.host.dir) ?? 0) + 1);
    return api;
  }

  required(file: string): string | undefined {
    const rel = this.relOf(file);
    if (rel === undefined) return undefined;
    const url = pathToFileURL(file).href;
    const live = this.live.get(rel);
    if (live && live.url !== url) return undefined;
    if (!live) this.live.set(rel, { url, bytes: 0, deps: new Map(), required: true, serial: this.serial });
    else live.required = true;
    return rel;
  }

  /** Whether `rel` (an ES module of the app, or one imported by one) was loaded by CommonJS `require`. */
  isRequired(rel: string): boolean {
    return this.live.get(rel)?.required ?? false;
  }

  /** Source bytes of the live version of `rel`, what retiring it adds. */
  bytesOf(rel: string): number {
    return this.live.get(rel)?.bytes ?? 0;
  }

  /**
   * Runs the dispose handler (it fills the persisted `data`), deactivates the version and retires it:
   * the app's imports of `rel` resolve to a new version from now on. The record stays in Node's
   * loader for good; its size joins `retired`.
   */
  async dispose(rel: string, errors: unknown[], retire: (() => Promise<void>)[]): Promise<void> {
    const record = this.records.get(rel);
    if (record) {
      for (const handler of [...record.hot.disposeHandlers]) {
        try {
          await handler(this.data.get(rel) ?? {});
        } catch (err) {
          errors.push(err);
        }
      }
      for (const handler of record.hot.retireHandlers) retire.push(async () => handler());
      this.records.delete(rel);
      this.forgetLoaded(record.loadedFrom);
      this.host.graph.dropOutgoing(rel);
    }
    this.retire(rel);
  }

  /** The module is no longer imported: its prune handler gets `data`, which then goes. */
  async prune(rel: string, errors: unknown[], retire: (() => Promise<void>)[]): Promise<void> {
    const handler = this.records.get(rel)?.callbacks.prune;
    await this.dispose(rel, errors, retire);
    try {
      await handler?.(this.data.get(rel) ?? {});
    } catch (err) {
      errors.push(err);
    }
    this.data.delete(rel);
  }

  /** The live version of `rel` (an ES module, or a CommonJS module's facade) is no longer current. */
  retire(rel: string): void {
    const live = this.live.get(rel);
    if (!live) return;
    this.live.delete(rel);
    this.retired.versions += 1;
    this.retired.bytes += live.bytes;
  }

  /** A module that is gone from the release: its data goes too. */
  forget(rel: string): void {
    this.data.delete(rel);
  }

  releasesInUse(): string[] {
    return [...this.loadedFrom.keys()];
  }

  private forgetLoaded(dir: string): void {
    const count = (this.loadedFrom.get(dir) ?? 1) - 1;
    if (count > 0) this.loadedFrom.set(dir, count);
    else this.loadedFrom.delete(dir);
  }

  /** `import(new URL('./x.js', import.meta.url))` in code evaluated from an older release: the current one. */
  private toCurrent(specifier: string): string {
    if (!specifier.startsWith('file:')) return specifier;
    const rel = this.relOf(fileURLToPath(specifier));
    return rel === undefined ? specifier : pathToFileURL(fromRel(this.host.dir, rel)).href;
  }

  /** The identity of a file in the current release, or in one live code was evaluated from. */
  private relOf(file: string): string | undefined {
    for (const root of [this.host.dir, ...this.loadedFrom.keys()]) {
      if (file.startsWith(root + path.sep)) return toRel(root, file);
    }
    return undefined;
  }

  private resolveDep(rel: string, specifier: string): string {
    const known = this.live.get(rel)?.deps.get(specifier);
    if (known !== undefined) return known;
    if (specifier.startsWith('./') || specifier.startsWith('../')) {
      const target = this.relOf(fileURLToPath(new URL(specifier, pathToFileURL(fromRel(this.host.dir, rel)))));
      if (target !== undefined) return target;
    }
    throw new HotError('HOT_ERR_ACCEPT', `${JSON.stringify(specifier)} from ${rel}`);
  }
}
