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

/** Links followed on one path before it counts as a loop (the kernel's own limit). */
const MAX_LINK_HOPS = 40;
/** Path parts looked at while following one link: a tangle of long targets must not hold the service. */
const MAX_LINK_STEPS = 1024;

/**
 * Whether the symlink at `rel` (posix, relative to the release root) leads inside the release as
 * the kernel resolves it: every link on the way is followed (`targetOf` gives the target of the link
 * at a path, undefined where there is none), so a `..` after a link climbs from where that link
 * leads, not from its name (`a/b/top/..` with `top -> ../..` is the release's parent, though it reads
 * as `a/b`). Climbing above the root at any step is an escape; so is following more than 40 links,
 * or more than 1,024 path parts, for one link (no link a bundle needs comes near either).
 */
export function staysInside(rel: string, targetOf: (rel: string) => string | undefined): boolean {
  const at = rel.split('/').slice(0, -1);
  // The parts still to walk, the next one last.
  const pending: string[] = [];
  const follow = (target: string | undefined): boolean => {
    const t = String(target ?? '').replaceAll('\\', '/');
    if (t === '' || t.startsWith('/') || /^[A-Za-z]:/.test(t)) return false;
    pending.push(...t.split('/').reverse());
    return true;
  };
  if (!follow(targetOf(rel))) return false;
  for (let hops = 0, steps = 0; pending.length > 0;) {
    if (++steps > MAX_LINK_STEPS) return false;
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.pop() === undefined) return false;
      continue;
    }
    at.push(part);
    const target = targetOf(at.join('/'));
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return false;
    at.pop();
    if (!follow(target)) return false;
  }
  return true;
}
