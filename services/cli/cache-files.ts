import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crypto } from './builtins.js';

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

/** A cache file written whole or not at all (temp + rename); failures only cost the next push a re-read. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch {
    // A read-only home or a full disk: the cache is an optimisation.
  }
}
