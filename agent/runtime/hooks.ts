import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fakeParent, loader, type CjsModule } from './cjs.js';
import { liveModules, ownerOf, retiredModules, fromRel } from './registry.js';
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
 * - `Module.prototype.load`: a module of a hosted release gets `module.hot` before its code runs;
 * - `Module.prototype.require`: records the app's dependency graph (edges by relative path);
 * - `Module._resolveFilename`: a disposed module still running (old in-flight code) resolves its
 *   lazy requires against the *current* release, so it never reloads files from an old one; the
 *   app's relative requests resolve without Node's never-emptied caches (resolve.ts);
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
        return original.call(this, filename);
      } catch (err) {
        found.owner.loadFailed(this, found.rel);
        throw err;
      }
    }),
    patch(loader.prototype, 'require', (original) => function require(this: CjsModule, request: string) {
      const exports = original.call(this, request);
      liveModules.get(this)?.afterRequire(this, request);
      return exports;
    }),
    patch(loader, '_resolveFilename', (original) => function resolveFilename(
      request: string, parent: CjsModule | null | undefined, isMain?: boolean, options?: unknown,
    ) {
      const retired = parent ? retiredModules.get(parent) : undefined;
      const owner = retired?.owner ?? (parent ? liveModules.get(parent) : undefined);
      if (!owner || !parent) return original(request, parent, isMain, options);
      const from = retired ? fromRel(owner.dir, retired.rel) : parent.filename;
      // require(path.join(__dirname, 'x')) from code evaluated in an older release.
      if (path.isAbsolute(request)) request = owner.toCurrent(request, retired ? rootOf(parent.filename, retired.rel) : undefined);
      if (options !== undefined || isBuiltin(request)) return original(request, retired ? fakeParent(from, path.dirname(from)) : parent, isMain, options);
      if (isRelativeRequest(request)) {
        const found = resolveRelative(path.dirname(from), request);
        if (found !== undefined) return found;
      }
      const bare = !isRelativeRequest(request) && !path.isAbsolute(request);
      const known = bare ? owner.bareTarget(from, request) : undefined;
      if (known !== undefined) return known;
      const found = original(request, retired ? fakeParent(from, path.dirname(from)) : parent, isMain, options);
      if (bare) owner.rememberBare(from, request, found);
      return found;
    }),
    patch(loader._extensions, '.js', (original) => function js(this: unknown, module: CjsModule, filename: string) {
      if (!liveModules.get(module)?.plainCommonJs(filename)) return original.call(this, module, filename);
      module._compile(readFileSync(filename, 'utf8'), filename, 'commonjs');
    }),
  ];
  return () => {
    for (const u of undo.reverse()) u();
  };
}

/** The release root a module was loaded under, from its filename and relative path. */
function rootOf(filename: string, rel: string): string {
  return filename.slice(0, filename.length - rel.length - 1);
}
