import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { loader } from './cjs.js';
import type { FileIndex } from './file-index.js';
import { indexProbe } from './index-probe.js';

export function isRelativeRequest(request: string): boolean {
  return request === '.' || request === '..' || request.startsWith('./') || request.startsWith('../');
}

/** What the search asks of the file system, answered by syscalls (`disk`) or by a file index (index-probe.ts). */
export interface Probe {
  /** A regular file (through links, for the disk), a directory, or neither (or: cannot tell). */
  kind(file: string): 'file' | 'dir' | undefined;
  /** The path Node names a found file by (its realpath). */
  real(file: string): string;
  /** Whether `dir/package.json` may be read for its `main`. */
  hasPackageJson(dir: string): boolean;
}

/**
 * Node's LOAD_AS_FILE / LOAD_AS_DIRECTORY for a relative request (Module._findPath with one
 * lookup directory), done without Node's caches. Node would add, per release directory, entries to
 * its private realpath cache and package.json cache (for `trySelf` and directory requests) that
 * are never dropped — about 1 KB per update. Returns undefined when nothing matches, so Node's own
 * resolution produces its usual error.
 *
 * With the current release's file index, the index is asked first (index-probe.ts): the stat and
 * realpath calls per candidate are about 12 % of an update's CPU time in a profile of the bench's
 * figure 2. Only a file it finds is trusted; when it finds none, or cannot tell, the disk answers.
 */
export function resolveRelative(fromDir: string, request: string, index?: FileIndex): string | undefined {
  const base = path.resolve(fromDir, request);
  const exts = Object.keys(loader._extensions);
  const dirOnly = request.endsWith('/') || /(?:^|\/)\.\.?$/.test(request);
  const probe = index ? indexProbe(index) : undefined;
  const indexed = probe ? search(probe, base, exts, dirOnly) : undefined;
  return indexed ?? search(disk, base, exts, dirOnly);
}

/** The candidates in Node's order, the first that `probe` calls a file winning. */
function search(probe: Probe, base: string, exts: string[], dirOnly: boolean): string | undefined {
  const kind = probe.kind(base);
  if (!dirOnly) {
    if (kind === 'file') return probe.real(base);
    const withExt = firstFile(probe, exts.map((ext) => base + ext));
    if (withExt) return withExt;
  }
  if (kind !== 'dir') return undefined;
  const main = probe.hasPackageJson(base) ? mainOf(base) : undefined;
  if (main) {
    const target = path.resolve(base, main);
    const found = firstFile(probe, [target, ...exts.map((ext) => target + ext), ...exts.map((ext) => path.join(target, `index${ext}`))]);
    if (found) return found;
  }
  return firstFile(probe, exts.map((ext) => path.join(base, `index${ext}`)));
}

function firstFile(probe: Probe, candidates: string[]): string | undefined {
  for (const candidate of candidates) if (probe.kind(candidate) === 'file') return probe.real(candidate);
  return undefined;
}

/** One syscall per question, and no cache: the result names a file of one release. */
const disk: Probe = {
  kind(file) {
    const s = statSync(file, { throwIfNoEntry: false });
    return s?.isFile() ? 'file' : s?.isDirectory() ? 'dir' : undefined;
  },
  real: (file) => realpathSync.native(file),
  hasPackageJson: () => true,
};

function mainOf(dir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'package.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const main = (JSON.parse(text) as { main?: unknown }).main;
    return typeof main === 'string' && main !== '' ? main : undefined;
  } catch {
    return undefined;
  }
}
