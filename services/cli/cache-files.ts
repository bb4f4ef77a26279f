import os from 'node:os';
import path from 'node:path';
import { crypto, fs } from './builtins.js';

/**
 * Where the CLI keeps what it learned between pushes: `HOTDEPLOY_CACHE_DIR`, else the user's cache
 * folder. Never the app's folder: that would be packed, or would need an ignore rule.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOTDEPLOY_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hotdeploy');
}

/** Longest key kept readable in a file name; a longer one is named by its sha256. */
const READABLE_KEY = 160;

/**
 * The cache file of `key` (a folder's path, a server and app) under `kind`: the key itself,
 * percent-encoded (no `/`, one name per key), so a push reads its first cache without loading
 * node:crypto (~7 ms) before its first request.
 */
export function cacheFile(env: NodeJS.ProcessEnv, kind: string, key: string): string {
  const encoded = encodeURIComponent(key);
  const name = encoded.length <= READABLE_KEY ? encoded : crypto().createHash('sha256').update(key).digest('hex').slice(0, 32);
  return path.join(cacheDir(env), kind, `${name}.json`);
}

/**
 * A cache file written whole or not at all (temp + rename); failures only cost the next push a
 * re-read. Synchronous calls: the files are small, and node:fs/promises takes ~3 ms to load, which
 * the start of a push does without.
 */
export async function writeAtomic(file: string, text: string): Promise<void> {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch {
    // A read-only home or a full disk: the cache is an optimisation.
  }
}
