import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fakeParent, loader, type CjsLoader, type CjsModule } from './cjs.js';
import { outsideCompilationCache } from './compilation-cache.js';
import { liveModules, ownerOf, retiredModules, fromRel, type OwnedModule } from './registry.js';
import { isRelativeRequest, resolveRelative } from './resolve.js';

/**
 * Replaces `obj[key]` and returns the undo, which restores the original only while the hook is
 * still ours — another tool may have wrapped it since (tsx, src/cjs/api/register.ts).
 */
function patch<T extends object, K extends keyof T>(obj: T, key: K, make: (original: T[K]) => T[K]): () => void {
  const original = obj[key];
  const mine = make(original);
  obj[key] = mine;
  return () => {
    if (obj[key] === mine) obj[key] = original;
  };
}

/**
 * The four patches of Node's CommonJS loader the runtime needs:
 * - `Module.prototype.load`: a module of a hosted release gets `module.hot` before its code runs,
 *   compiles outside V8's compilation cache, which would keep its source once it is evicted
 *   (compilation-cache.ts), and is noted once it ran (an ES module loaded by `require(esm)` is
 *   told apart);
 * - `Module.prototype.require`: records the app's dependency graph (edges by relative path);
 * - `Module._resolveFilename`: an app module resolves its requests against the *current* release,
 *   whichever release it was evaluated from (an unchanged module, or a disposed one whose old code
 *   still runs), so it never loads files of an old one; a file that is a live module resolves to that
 *   module's `require.cache` key, so new code shares the unchanged instance; the app's relative
 *   requests resolve without Node's never-emptied caches (resolve.ts);
 * - `Module._extensions['.js']`: the app's own `.js` files compile as CommonJS without Node's
 *   package-scope lookup (what `lib/internal/modules/cjs/loader.js` does for a `.js` file whose
 *   package.json has no `"type": "module"`), which caches one entry per release directory forever.
 */
export function installHooks(): () => void {
  const undo = [
    patch(loader.prototype, 'load', (original) => function load(this: CjsModule, filename: string) {
      const found = ownerOf(filename);
      if (!found) return original.call(this, filename);
      found.owner.beforeLoad(this, found.rel);
      try {
        outsideCompilationCache(() => original.call(this, filename));
      } catch (err) {
        found.owner.loadFailed(this, found.rel);
        throw err;
      }
      found.owner.loaded(this, found.rel);
    }),
    patch(loader.prototype, 'require', (original) => function require(this: CjsModule, request: string) {
      const exports = original.call(this, request);
      const live = liveModules.get(this);
      live?.owner.afterRequire(this, live.rel, request, exports);
      return exports;
    }),
    patch(loader, '_resolveFilename', (original) => function resolveFilename(
      request: string, parent: CjsModule | null | undefined, isMain?: boolean, options?: unknown,
    ) {
      const live = parent ? liveModules.get(parent) : undefined;
      const found = live ?? (parent ? retiredModules.get(parent) : undefined);
      if (!found || !parent) return original(request, parent, isMain, options);
      const file = resolveInCurrent(original, found, parent, request, isMain, options);
      // The require hook's afterRequire then needs no second resolution.
      if (live && isPlainRequire(options)) live.owner.resolved(parent, live.rel, request, file);
      return file;
    }),
    patch(loader._extensions, '.js', (original) => function js(this: unknown, module: CjsModule, filename: string) {
      if (!liveModules.get(module)?.owner.plainCommonJs(filename)) return original.call(this, module, filename);
      module._compile(readFileSync(filename, 'utf8'), filename, 'commonjs');
    }),
  ];
  return () => {
    for (const u of undo.reverse()) u();
  };
}

type ResolveFilename = CjsLoader['_resolveFilename'];

/**
 * `request` from an app module, resolved in the current release wherever the module was evaluated
 * (its file there is `from`), answering a live module's own `require.cache` key for its file.
 */
function resolveInCurrent(
  original: ResolveFilename, { owner, rel }: OwnedModule, parent: CjsModule, request: string, isMain?: boolean, options?: unknown,
): string {
  const from = fromRel(owner.dir, rel);
  const asParent = (): CjsModule => (from === parent.filename ? parent : fakeParent(from, path.dirname(from)));
  // require(path.join(__dirname, 'x')) from code evaluated in an older release.
  if (path.isAbsolute(request)) request = owner.toCurrent(request, rootOf(parent.filename, rel));
  if (!isPlainRequire(options) || isBuiltin(request)) return owner.liveKey(original(request, asParent(), isMain, options));
  if (isRelativeRequest(request)) {
    const file = resolveRelative(path.dirname(from), request, owner.index);
    if (file !== undefined) return owner.liveKey(file);
  }
  // `#internal` requests follow the app's own package.json "imports", which an update may change.
  const bare = !isRelativeRequest(request) && !path.isAbsolute(request) && !request.startsWith('#');
  const memo = bare ? withConditions(request, options) : request;
  const known = bare ? owner.bareTarget(from, memo) : undefined;
  if (known !== undefined) return owner.liveKey(known);
  const file = original(request, asParent(), isMain, options);
  if (bare) owner.rememberBare(from, memo, file);
  return owner.liveKey(file);
}

/**
 * A `require` (or `require.resolve` without `paths`): no options, or — while `module.registerHooks`
 * hooks are registered, as in a worker of an ES module app — only the conditions Node's hook chain
 * passes on (resolveForCJSWithHooks in lib/internal/modules/cjs/loader.js). Conditions matter to
 * bare requests only (package `exports` and `imports`), so they key the remembered ones.
 */
function isPlainRequire(options: unknown): boolean {
  return options === undefined || (options as { paths?: unknown }).paths === undefined;
}

function withConditions(request: string, options: unknown): string {
  const conditions = (options as { conditions?: Iterable<string> } | undefined)?.conditions;
  return conditions ? `${request}\0${[...conditions].join(',')}` : request;
}

/** The release root a module was loaded under, from its filename and relative path. */
function rootOf(filename: string, rel: string): string {
  return filename.slice(0, filename.length - rel.length - 1);
}
