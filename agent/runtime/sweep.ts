import path from 'node:path';
import { loader } from './cjs.js';
import { isHosted } from './registry.js';

/**
 * Node's `Module._pathCache` (request + lookup paths → filename) keeps an entry for every request
 * resolved from a release directory; with a fresh directory per release they would pile up. Runs
 * after an update (off its timed path) for the release the app left, unless it is current again.
 */
export function sweepPathCache(dir: string): void {
  if (isHosted(dir)) return;
  const inside = dir + path.sep;
  const cache = loader._pathCache;
  for (const key of Object.keys(cache)) {
    const value = cache[key];
    if (key.includes(inside) || key.endsWith(dir) || key.includes(dir + '\x00') || value?.startsWith(inside)) delete cache[key];
  }
}
