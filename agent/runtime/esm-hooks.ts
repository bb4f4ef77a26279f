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
type NextLoad = (url: string, context?: object) => Loaded;
interface Hooks {
  resolve(specifier: string, context: ResolveContext, next: NextResolve): Resolved;
  load(url: string, context: object, next: NextLoad): Loaded;
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
const urls = new Map<string, { app: EsmApp; rel: string }>();
const apps = new Set<EsmApp>();
/** Who a `require`d ES module file belongs to: the ES module apps, by the release holding the file. */
let ownerOfFile: (file: string) => EsmApp | undefined = () => undefined;
let deregister: (() => void) | undefined;

/** The one line the load hook puts before an app module's first line (same line: line numbers stay). */
const HOT_KEY = 'hotdeploy.importMetaHot';
const PRELUDE = `import.meta.hot=globalThis[Symbol.for(${JSON.stringify(HOT_KEY)})]?.(import.meta.url);`;
const decoder = new TextDecoder();

export function registerUrl(url: string, app: EsmApp, rel: string): void {
  urls.set(url, { app, rel });
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

/**
 * An import by an app module (live or retired) resolves in the app's current release, to the live
 * version of the module there or a new one. Anything else — CommonJS `require` (the CommonJS hooks'
 * business), imports by the runtime or by code outside the app — goes on unchanged.
 */
function resolve(specifier: string, context: ResolveContext, next: NextResolve): Resolved {
  const parent = context.parentURL === undefined ? undefined : urls.get(context.parentURL);
  if (!parent || context.conditions?.includes('require')) return next(specifier, context);
  return parent.app.resolve(parent.rel, specifier, context, next);
}

/**
 * Notes each app module's source size; an app's ES modules get `import.meta.hot` from a prelude on
 * their first line. Hooks cannot set `import.meta` (Node ≥ 20 has no `initializeImportMeta` hook,
 * and `import.meta` has no prototype to hang a getter on), so the module sets it itself.
 */
function load(url: string, context: object, next: NextLoad): Loaded {
  const loaded = next(url, context);
  if (loaded.format !== 'module' && loaded.format !== 'commonjs') return loaded;
  let owned = urls.get(url);
  // An ES module of an app loaded by `require(esm)`: known, so that a change to it reloads.
  if (!owned && loaded.format === 'module' && url.startsWith('file:') && apps.size > 0) {
    const file = fileURLToPath(url);
    const app = ownerOfFile(file);
    const rel = app?.required(file);
    if (app && rel !== undefined) registerUrl(url, app, (owned = { app, rel }).rel);
  }
  if (!owned || loaded.source == null) return loaded;
  const source = loaded.source;
  owned.app.loading(owned.rel, url, typeof source === 'string' ? Buffer.byteLength(source) : source.byteLength);
  if (loaded.format !== 'module') return loaded;
  const text = typeof source === 'string' ? source : decoder.decode(source as Uint8Array);
  return { ...loaded, source: withPrelude(text) };
}

/** The prelude goes on line 1, or line 2 after a hashbang, so every line keeps its number. */
function withPrelude(text: string): string {
  if (!text.startsWith('#!')) return PRELUDE + text;
  const eol = text.indexOf('\n');
  return eol < 0 ? text : text.slice(0, eol + 1) + PRELUDE + text.slice(eol + 1);
}
