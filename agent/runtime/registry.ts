import path from 'node:path';
import type { CjsModule } from './cjs.js';
import type { EsmApp } from './esm-hooks.js';
import type { FileIndex } from './file-index.js';
import { installHooks } from './hooks.js';

/** What the loader hooks need from a hosted app (implemented by `AppState`). */
export interface Owner {
  /** The current release root (a realpath). Only files under it are the app's modules. */
  readonly dir: string;
  /** A release's file index, once an update read it: the current release's from the update's apply on. */
  readonly index: FileIndex | undefined;
  /** An ES module app's side of the hooks (esm-hooks.ts), where the Node line can hot-swap ES modules. */
  readonly esm: EsmApp | undefined;
  /** Before the module's code runs: give it `module.hot` and a record. */
  beforeLoad(module: CjsModule, rel: string): void;
  /** Its evaluation threw: Node already dropped it from `require.cache`. */
  loadFailed(module: CjsModule, rel: string): void;
  /** It evaluated (for `require(esm)`: Node evaluated the ES module and set its namespace as `exports`). */
  loaded(module: CjsModule, rel: string): void;
  /**
   * Whether a `.js` file of the app is plain CommonJS without asking Node's package.json reader
   * (its cache keeps an entry per release directory, ~0.5 KB per update, never dropped).
   */
  plainCommonJs(filename: string): boolean;
  /**
   * An absolute path into a release the app's code was evaluated from (a `__dirname` of an
   * unchanged or retired module), mapped to the same relative path in the current release.
   */
  toCurrent(file: string, alsoFrom?: string): string;
  /**
   * A bare request (`require('pkg')`) from `from` (a file in the current release), resolved as the
   * app resolved it before, or undefined; `remember` records a resolution Node made.
   */
  bareTarget(from: string, request: string): string | undefined;
  rememberBare(from: string, request: string, filename: string): void;
  /** `parent` (a live module of this app, `rel`) resolved `request` to `filename` (a require, `require.resolve`). */
  resolved(parent: CjsModule, rel: string, request: string, filename: string): void;
  /** `parent` (a live module of this app, `rel`) required `request`, which returned `exports`. */
  afterRequire(parent: CjsModule, rel: string, request: string, exports: unknown): void;
  /**
   * The `require.cache` key of the live module that `file` (a file of the current release) is, or
   * `file` itself: an unchanged module stays keyed under the release it was evaluated from.
   */
  liveKey(file: string): string;
}

/** A module of an app: its owner and its identity there (the path relative to the release root). */
export interface OwnedModule {
  readonly owner: Owner;
  readonly rel: string;
}

/**
 * Process-wide state shared by every hosted app: which release directory belongs to which app, and
 * which module objects are live or retired. One registry per copy of the runtime; the hooks are
 * installed with the first app and undone with the last.
 */
const owners = new Map<string, Owner>();
/** Live app modules → their app. Weak, so an evicted module is never kept alive from here. */
export const liveModules = new WeakMap<CjsModule, OwnedModule>();
/** Disposed modules that old code may still run: their lazy requires resolve in the current release. */
export const retiredModules = new WeakMap<CjsModule, OwnedModule>();

let undoHooks: (() => void) | undefined;

export function addOwner(owner: Owner): void {
  if (owners.has(owner.dir)) throw new Error(`release ${owner.dir} is already hosted`);
  owners.set(owner.dir, owner);
  undoHooks ??= installHooks();
}

export function moveOwner(owner: Owner, from: string): void {
  if (owners.get(from) === owner) owners.delete(from);
  owners.set(owner.dir, owner);
}

export function removeOwner(owner: Owner): void {
  if (owners.get(owner.dir) === owner) owners.delete(owner.dir);
  if (owners.size === 0 && undoHooks) {
    undoHooks();
    undoHooks = undefined;
  }
}

/** Whether some hosted app's current release already is `dir` (two apps cannot share one). */
export function isHosted(dir: string): boolean {
  return owners.has(dir);
}

/** The app whose current release holds `filename`, walking up (a few Map lookups per load). */
export function ownerOf(filename: string): { owner: Owner; rel: string } | undefined {
  if (owners.size === 0) return undefined;
  let dir = path.dirname(filename);
  for (;;) {
    const owner = owners.get(dir);
    if (owner) return { owner, rel: toRel(dir, filename) };
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** A module identity: the path relative to the release root, `/`-separated. */
export function toRel(root: string, filename: string): string {
  const rel = path.relative(root, filename);
  return path.sep === '/' ? rel : rel.split(path.sep).join('/');
}

export function fromRel(root: string, rel: string): string {
  return path.join(root, ...rel.split('/'));
}
