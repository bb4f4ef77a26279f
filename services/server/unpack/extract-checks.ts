import path from 'node:path';
import { DeployError } from '../errors.js';

export interface ExtractLimits {
  maxUnpackedBytes: number;
  maxFiles: number;
  maxDepth: number;
  extractTimeoutMs: number;
}

/** The header fields the checks read (tar-reader.ts's TarEntry has them all). */
export interface EntryHeader {
  path: string;
  type: string;
  size?: number;
  linkpath?: string;
}

export const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);
const ALLOWED_TYPES: ReadonlySet<string> = new Set([...FILE_TYPES, 'Directory', 'SymbolicLink', 'Link']);

/**
 * Per-entry limits and string checks, made on the header before anything is written (
 * string checks with no I/O), so a bomb or an escape is stopped before it touches the disk.
 * Returns the entry's path segments.
 */
export class EntryChecks {
  entries = 0;
  bytes = 0;

  constructor(private readonly limits: ExtractLimits) {}

  check(entry: EntryHeader): string[] {
    this.entries += 1;
    if (this.entries > this.limits.maxFiles) throw new DeployError('DEPLOY_ERR_TOO_MANY_FILES', `more than ${this.limits.maxFiles}`);
    if (!ALLOWED_TYPES.has(entry.type)) throw new DeployError('DEPLOY_ERR_ENTRY_TYPE', `${entry.path} is a ${entry.type}`);
    const parts = entryParts(entry.path);
    if (parts === undefined) throw new DeployError('DEPLOY_ERR_UNSAFE_PATH', entry.path);
    if (parts.length > this.limits.maxDepth) {
      throw new DeployError('DEPLOY_ERR_TOO_DEEP', `${parts.length} levels, more than ${this.limits.maxDepth}`);
    }
    checkLink(entry, parts);
    if (FILE_TYPES.has(entry.type)) {
      this.bytes += entry.size ?? 0;
      if (this.bytes > this.limits.maxUnpackedBytes) {
        throw new DeployError('DEPLOY_ERR_UNPACKED_TOO_LARGE', `more than ${this.limits.maxUnpackedBytes} bytes`);
      }
    }
    return parts;
  }
}

/** The path's segments, or undefined when it is absolute or climbs with `..`. */
export function entryParts(entryPath: string): string[] | undefined {
  const p = entryPath.includes('\\') ? entryPath.replaceAll('\\', '/') : entryPath;
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return undefined;
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '..') return undefined;
    if (part !== '' && part !== '.') parts.push(part);
  }
  return parts;
}

/** Where a link entry points, as a path relative to the archive's top (posix), or a LINK_ESCAPE. */
export function linkTarget(entry: EntryHeader, parts: string[]): string {
  const target = String(entry.linkpath ?? '').replaceAll('\\', '/');
  const escape = () => new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${entry.path} -> ${target}`);
  if (target === '' || target.startsWith('/') || /^[A-Za-z]:/.test(target)) throw escape();
  // A symlink resolves from its own folder; a hard link's target is a path inside the archive.
  if (entry.type === 'Link' && entryParts(target) === undefined) throw escape();
  const base = entry.type === 'SymbolicLink' ? parts.slice(0, -1).join('/') : '';
  const resolved = path.posix.normalize(path.posix.join(base || '.', target));
  if (resolved === '..' || resolved.startsWith('../')) throw escape();
  return resolved;
}

function checkLink(entry: EntryHeader, parts: string[]): void {
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') linkTarget(entry, parts);
}

/** true when `rel` (posix, relative to the archive's top) is `root` or inside it; '' is the top itself. */
export function isInside(rel: string, root: string): boolean {
  return root === '' ? rel !== '..' && !rel.startsWith('../') : rel === root || rel.startsWith(`${root}/`);
}
