import { readFileSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import type { EsmHotApi } from './esm-hot.js';

/** What the synchronous hooks hand to ours (`module.registerHooks`, Node 22.15+ / 23.5+ / 24). */
export interface ResolveContext {
  parentURL?: string;
  conditions?: readonly string[];
  importAttributes?: Record<string, string>;
}
export interface Resolved {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
export type NextResolve = (specifier: string, context?: ResolveContext) => Resolved;
interface Loaded {
  format?: string | null;
  source?: string | ArrayBuffer | ArrayBufferView | null;
  shortCircuit?: boolean;
}
interface LoadContext {
  format?: string | null;
  importAttributes?: Record<string, string>;
}
type NextLoad = (url: string, context?: LoadContext) => Loaded;
interface Hooks {
  resolve(specifier: string, context: ResolveContext, next: NextResolve): Resolved;
  load(url: string, context: LoadContext, next: NextLoad): Loaded;
}
type RegisterHooks = (hooks: Hooks) => { deregister(): void };

const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks;

/**
 * Whether this Node line can hot-swap ES modules: only with the synchronous, in-thread hooks can the
 * resolve hook read the app's module versions as the update changes them. `module.register`'s hooks
 * run on another thread and answer asynchronously; carrying the version map there would need a
 * round trip before every import and a second copy of every app's state.
 */
export const esmHotSupported = typeof registerHooks === 'function';

/** One ES module app, as the hooks see it (implemented by `EsmModules`). */
export interface EsmApp {
  /** `specifier`, imported by the app module `rel`: resolved in the current release, versioned. */
  resolve(rel: string, specifier: string, context: ResolveContext, next: NextResolve): Resolved;
  /** `url`, a version of the app module `rel`, imported as such (by the runtime): its format. */
  resolveVersion(rel: string, url: string, context: ResolveContext, next: NextResolve): Resolved;
  /** The app module `rel` loads from `url`: its source size (the retired-memory count). */
  loading(rel: string, url: string, bytes: number): void;
  /** The module at `url` starts to evaluate: its `import.meta.hot`. */
  evaluating(rel: string, url: string): EsmHotApi | undefined;
  /** An ES module of the app that CommonJS `require`d (a change under it takes the reload path). */
  required(file: string): string | undefined;
}

/**
 * Every URL an app module was loaded under, live or retired, with its app and identity. Retired
 * versions stay: old code still running imports into the current release, and Node keeps their
 * module records anyway (what `EsmModules` counts against its bound). An app's entries go when it closes.
 */
const urls = new Map<string, { app: EsmApp; rel: string; file: string }>();
const apps = new Set<EsmApp>();
/** Who a `require`d ES module file belongs to: the ES module apps, by the release holding the file. */
let ownerOfFile: (file: string) => EsmApp | undefined = () => undefined;
let deregister: (() => void) | undefined;

/** The one line the load hook puts before an app module's first line (same line: line numbers stay). */
const HOT_KEY = 'hotdeploy.importMetaHot';
const PRELUDE = `import.meta.hot=globalThis[Symbol.for(${JSON.stringify(HOT_KEY)})]?.(import.meta.url);`;
const decoder = new TextDecoder();

/** `url` is a version of the app module `rel`, read from `file`. */
export function registerUrl(url: string, app: EsmApp, rel: string, file: string): void {
  urls.set(url, { app, rel, file });
}

export function forgetUrls(app: EsmApp): void {
  for (const [url, owned] of urls) if (owned.app === app) urls.delete(url);
}

/** Installs the hooks with the first ES module app; the last one to close removes them. */
export function addEsmApp(app: EsmApp, owner: (file: string) => EsmApp | undefined): void {
  apps.add(app);
  ownerOfFile = owner;
  if (deregister || !registerHooks) return;
  (globalThis as Record<symbol, unknown>)[Symbol.for(HOT_KEY)] = importMetaHot;
  const hooks = registerHooks({ resolve, load });
  deregister = () => hooks.deregister();
}

export function removeEsmApp(app: EsmApp): void {
  apps.delete(app);
  forgetUrls(app);
  if (apps.size > 0 || !deregister) return;
  deregister();
  deregister = undefined;
  delete (globalThis as Record<symbol, unknown>)[Symbol.for(HOT_KEY)];
}

function importMetaHot(url: string): EsmHotApi | undefined {
  const owned = urls.get(url);
  return owned?.app.evaluating(owned.rel, url);
}

/** Set while `resolveAsImport` asks Node's resolver on behalf of a module of some release. */
let asking: { parentURL: string; conditions: readonly string[] | undefined } | undefined;
/** The conditions the app's imports are resolved under (the runtime's own import may carry others). */
let importConditions: readonly string[] | undefined;

/**
 * `specifier` resolved as an `import` from `parentURL` would be, by Node's resolver (exports,
 * imports, conditions), without importing anything: how an update's plan asks whether an ES module's
 * bare import resolves elsewhere in the new release. `import.meta.resolve` is Node's synchronous
 * entry to the resolve chain; the hook answers it from `parentURL` instead of this file.
 */
export function resolveAsImport(parentURL: string, specifier: string): string {
  asking = { parentURL, conditions: importConditions };
  try {
    return import.meta.resolve(specifier);
  } finally {
    asking = undefined;
  }
}

/**
 * An import by an app module (live or retired) resolves in the app's current release, to the live
 * version of the module there or a new one. Anything else — CommonJS `require` (the CommonJS hooks'
 * business), imports by the runtime or by code outside the app — goes on unchanged.
 */
function resolve(specifier: string, context: ResolveContext, next: NextResolve): Resolved {
  if (asking) {
    const { parentURL, conditions } = asking;
    asking = undefined;
    return next(specifier, { ...context, parentURL, ...(conditions ? { conditions } : {}) });
  }
  if (context.conditions?.includes('require')) return next(specifier, context);
  const parent = context.parentURL === undefined ? undefined : urls.get(context.parentURL);
  if (parent) {
    importConditions = context.conditions;
    return parent.app.resolve(parent.rel, specifier, context, next);
  }
  const version = urls.get(specifier);
  return version ? version.app.resolveVersion(version.rel, specifier, context, next) : next(specifier, context);
}

/**
 * Notes each app module's source size; an app's ES modules get `import.meta.hot` from a prelude on
 * their first line. Hooks cannot set `import.meta` (Node ≥ 20 has no `initializeImportMeta` hook,
 * and `import.meta` has no prototype to hang a getter on), so the module sets it itself.
 *
 * An app module known to be an ES module (the format its resolution gave) is read here directly:
 * Node's default load would read it as bytes, look up its format again and hand it back to be
 * decoded, all work the update waits for.
 */
function load(url: string, context: LoadContext, next: NextLoad): Loaded {
  let owned = urls.get(url);
  if (owned && context.format === 'module' && !hasAttributes(context.importAttributes)) {
    const bytes = readFileSync(owned.file);
    owned.app.loading(owned.rel, url, bytes.byteLength);
    return { format: 'module', source: withPrelude(bytes.toString('utf8')), shortCircuit: true };
  }
  const loaded = next(url, context);
  if (loaded.format !== 'module' && loaded.format !== 'commonjs' && loaded.format !== 'json') return loaded;
  if (!owned && loaded.format === 'module' && url.startsWith('file:') && apps.size > 0) owned = requiredModule(url);
  if (!owned || loaded.source == null) return loaded;
  const source = loaded.source;
  owned.app.loading(owned.rel, url, typeof source === 'string' ? Buffer.byteLength(source) : source.byteLength);
  // A JSON module has no code to run a prelude: it is a loaded module of the app from here on,
  // so that a change to it is a change of a module (its importers take it), not of a data file.
  if (loaded.format === 'json') owned.app.evaluating(owned.rel, url);
  if (loaded.format !== 'module') return loaded;
  const text = typeof source === 'string' ? source : decoder.decode(source as Uint8Array);
  return { ...loaded, source: withPrelude(text) };
}

/** An ES module of an app loaded by `require(esm)`: known, so that a change to it reloads. */
function requiredModule(url: string): { app: EsmApp; rel: string; file: string } | undefined {
  const file = fileURLToPath(url);
  const app = ownerOfFile(file);
  const rel = app?.required(file);
  if (!app || rel === undefined) return undefined;
  registerUrl(url, app, rel, file);
  return { app, rel, file };
}

function hasAttributes(attributes: Record<string, string> | undefined): boolean {
  if (attributes) for (const _ in attributes) return true;
  return false;
}

/** The prelude goes on line 1, or line 2 after a hashbang, so every line keeps its number (a BOM goes). */
function withPrelude(text: string): string {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (!text.startsWith('#!')) return PRELUDE + text;
  const eol = text.indexOf('\n');
  return eol < 0 ? text : text.slice(0, eol + 1) + PRELUDE + text.slice(eol + 1);
}
