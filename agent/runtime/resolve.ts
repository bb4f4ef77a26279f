import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { loader } from './cjs.js';

export function isRelativeRequest(request: string): boolean {
  return request === '.' || request === '..' || request.startsWith('./') || request.startsWith('../');
}

/**
 * Node's LOAD_AS_FILE / LOAD_AS_DIRECTORY for a relative request (Module._findPath with one
 * lookup directory), done without Node's caches. Node would add, per release directory, entries to
 * its private realpath cache and package.json cache (for `trySelf` and directory requests) that
 * are never dropped — about 1 KB per update (issue 2, item 7). Returns undefined when nothing
 * matches, so Node's own resolution produces its usual error.
 */
export function resolveRelative(fromDir: string, request: string): string | undefined {
  const base = path.resolve(fromDir, request);
  const exts = Object.keys(loader._extensions);
  const dirOnly = request.endsWith('/') || /(?:^|\/)\.\.?$/.test(request);
  const kind = kindOf(base);
  if (!dirOnly) {
    if (kind === 'file') return real(base);
    const withExt = firstFile(exts.map((ext) => base + ext));
    if (withExt) return withExt;
  }
  if (kind !== 'dir') return undefined;
  const main = mainOf(base);
  if (main) {
    const target = path.resolve(base, main);
    const found = firstFile([target, ...exts.map((ext) => target + ext), ...exts.map((ext) => path.join(target, `index${ext}`))]);
    if (found) return found;
  }
  return firstFile(exts.map((ext) => path.join(base, `index${ext}`)));
}

function kindOf(file: string): 'file' | 'dir' | undefined {
  const s = statSync(file, { throwIfNoEntry: false });
  return s?.isFile() ? 'file' : s?.isDirectory() ? 'dir' : undefined;
}

function firstFile(candidates: string[]): string | undefined {
  for (const candidate of candidates) if (kindOf(candidate) === 'file') return real(candidate);
  return undefined;
}

/** One syscall, and no cache: the result names a file of one release. */
function real(file: string): string {
  return realpathSync.native(file);
}

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
