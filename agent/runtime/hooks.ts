import path from 'node:path';
import { fakeParent, loader, type CjsModule } from './cjs.js';
import { liveModules, ownerOf, retiredModules, fromRel } from './registry.js';

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
 * The three patches of Node's CommonJS loader the runtime needs:
 * - `Module.prototype.load`: a module of a hosted release gets `module.hot` before its code runs;
 * - `Module.prototype.require`: records the app's dependency graph (edges by relative path);
 * - `Module._resolveFilename`: a disposed module still running (old in-flight code) resolves its
 *   lazy requires against the *current* release, so it never reloads files from an old one.
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
      if (retired) {
        const filename = fromRel(retired.owner.dir, retired.rel);
        return original(request, fakeParent(filename, path.dirname(filename)), isMain, options);
      }
      return original(request, parent, isMain, options);
    }),
  ];
  return () => {
    for (const u of undo.reverse()) u();
  };
}
