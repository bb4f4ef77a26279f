import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fs } from './builtins.js';
import { cacheFile, writeAtomic } from './cache-files.js';
import { CliError } from './errors.js';

/** One packed file: its sha256, size and mode as the push sends them. */
export interface LocalFile {
  sha256: string;
  size: number;
  mode: number;
}

/**
 * `[size, mtimeMs, ctimeMs, ino, sha256]` per path: a file whose stat still says this is not read
 * again. ctime as git keeps it: a tool that puts an mtime back cannot put the ctime back.
 */
type CacheEntry = [number, number, number, number, string];

interface HashCache {
  version: 2;
  files: Record<string, CacheEntry>;
}

/** Files read at once while hashing. */
const READ_AHEAD = 32;

/**
 * The sha256 of each of `dir`'s `files`, reading only those whose size, mtime or inode changed since
 * the last push from this folder (the cache). git's rule for files changed within the same tick
 * holds: an entry is trusted only when the file's mtime is older than the cache file itself, since
 * a file written in the same tick as the cache could have changed after it was hashed.
 */
export async function hashLocalFiles(dir: string, files: readonly string[], env: NodeJS.ProcessEnv): Promise<{
  files: Map<string, LocalFile>; read: number; save: () => Promise<void>;
}> {
  const file = cacheFile(env, 'files', path.resolve(dir));
  const { cache, writtenAt } = await readCache(file);
  const out = new Map<string, LocalFile>();
  const toRead: Array<{ rel: string; st: Stats }> = [];
  for (const rel of files) {
    const st = fs.lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
    if (!st?.isFile()) throw new CliError('CLI_ERR_SOURCE', `${rel} changed while packing ${dir}`);
    const known = cache.files[rel];
    if (known && known[0] === st.size && known[1] === st.mtimeMs && known[2] === st.ctimeMs && known[3] === st.ino && st.mtimeMs < writtenAt) {
      out.set(rel, { sha256: known[4], size: st.size, mode: st.mode });
    } else {
      toRead.push({ rel, st });
    }
  }
  for (let i = 0; i < toRead.length; i += READ_AHEAD) {
    await Promise.all(toRead.slice(i, i + READ_AHEAD).map(async ({ rel, st }) => {
      const bytes = await readFile(path.join(dir, rel));
      out.set(rel, { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, mode: st.mode });
    }));
  }
  const stats = new Map([...toRead].map(({ rel, st }) => [rel, st]));
  const save = async (): Promise<void> => {
    if (toRead.length === 0) return;
    const next: HashCache = { version: 2, files: {} };
    for (const rel of files) {
      const entry = out.get(rel) as LocalFile;
      const st = stats.get(rel);
      const old = cache.files[rel];
      if (st) next.files[rel] = [st.size, st.mtimeMs, st.ctimeMs, st.ino, entry.sha256];
      else if (old) next.files[rel] = old;
    }
    await writeAtomic(file, JSON.stringify(next));
  };
  return { files: out, read: toRead.length, save };
}

async function readCache(file: string): Promise<{ cache: HashCache; writtenAt: number }> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const cache = JSON.parse(text) as HashCache;
    if (cache.version === 2 && typeof cache.files === 'object' && cache.files !== null) return { cache, writtenAt: st.mtimeMs };
  } catch {
    // No cache yet, or an unreadable one: every file is read.
  }
  return { cache: { version: 2, files: {} }, writtenAt: 0 };
}
