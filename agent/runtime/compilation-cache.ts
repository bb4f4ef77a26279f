import v8 from 'node:v8';

/**
 * V8's compilation cache keeps, from V8 12 on (Node 22 and 24), the Script of every CommonJS module
 * it compiled, source text included, after the module itself is gone: evicting a module frees its
 * objects but not its source. A worker taking 1,000 hot updates of a 100 KB module keeps ~100 MB
 * with the cache on (Node 20: under 1 MB). Only a garbage collection that first clears the whole
 * cache (a heap snapshot, memory pressure) lets them go. The cache saves work only when the same
 * source is compiled again under the same file name, which a hot update never does: each version of
 * an app module is compiled once. So the app's modules load with the cache off, and everything else
 * (the runtime, `eval`, `new Function`, `vm` after the load) keeps it.
 *
 * The switch is V8's `--compilation-cache` flag, read at every compile; a load nested in another
 * (a module requiring its dependencies) runs inside the outer one's window. A process started with
 * `--no-compilation-cache` keeps it off throughout.
 */
const startedWithoutCache = process.execArgv.some((arg) => arg === '--no-compilation-cache' || arg === '--no_compilation_cache');
let depth = 0;

export function outsideCompilationCache<T>(load: () => T): T {
  if (startedWithoutCache) return load();
  if (depth++ === 0) v8.setFlagsFromString('--no-compilation-cache');
  try {
    return load();
  } finally {
    if (--depth === 0) v8.setFlagsFromString('--compilation-cache');
  }
}
