import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { Unpack, type ReadEntry } from 'tar';
import { DeployError, isDeployError } from './errors.js';

export interface ExtractLimits {
  maxUnpackedBytes: number;
  maxFiles: number;
  maxDepth: number;
  extractTimeoutMs: number;
}

export interface ExtractResult {
  /** The app's root: `dest` itself, or the single top-level folder (`package/` of `npm pack`). */
  root: string;
  entries: number;
  bytes: number;
  /** sha256 of every regular file (hard links included), by posix path relative to `root`. */
  hashes: Map<string, string>;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/**
 * Unpacks a .tgz into `dest` (a fresh staging directory) or rejects with a DEPLOY_ERR_* code.
 * Entry checks are string checks with no I/O, done before node-tar touches the disk (STYLE.md,
 * node-tar's unpack.ts); node-tar's own checks stay on as a second line. The caller deletes `dest`
 * on any failure: with `strict` node-tar rejects but leaves partial files (DESIGN.md "Facts measured").
 */
export async function extractBundle(bundleFile: string, dest: string, limits: ExtractLimits): Promise<ExtractResult> {
  await assertGzip(bundleFile);
  await mkdir(dest, { recursive: true });
  const guard = new EntryGuard(limits);
  const unpack = new Unpack({
    cwd: dest,
    strict: true,
    // Ownership is preserved by default when running as root (DESIGN.md "Facts measured").
    preserveOwner: false,
    maxDepth: limits.maxDepth + 1,
    noMtime: false,
    filter: (_path: string, entry: unknown) => {
      const failure = guard.check(entry as ReadEntry);
      if (failure) unpack.abort(failure);
      return failure === undefined;
    },
    // Hash file contents on their way to disk, so the file-hash manifest costs no second read.
    transform: (entry: ReadEntry) => guard.hashing(entry) as unknown as ReadEntry,
  });
  const input = createReadStream(bundleFile);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      unpack.abort(new DeployError('DEPLOY_ERR_EXTRACT_TIMEOUT', `${limits.extractTimeoutMs} ms`));
    }, limits.extractTimeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      input.destroy();
      reject(mapExtractError(err));
    };
    unpack.on('error', fail);
    input.on('error', fail);
    unpack.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    input.pipe(unpack as unknown as NodeJS.WritableStream);
  });
  const root = await appRoot(dest);
  return { root, entries: guard.entries, bytes: guard.bytes, hashes: guard.hashesUnder(path.relative(dest, root)) };
}

/** Per-entry limits, counted as entries arrive so a bomb is stopped before it is written. */
class EntryGuard {
  entries = 0;
  bytes = 0;
  private readonly hashes = new Map<string, string>();
  private readonly links: [string, string][] = [];

  constructor(private readonly limits: ExtractLimits) {}

  hashing(entry: ReadEntry): Transform {
    const hash = createHash('sha256');
    const key = (entryParts(entry.path) ?? []).join('/');
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        hash.update(chunk);
        callback(null, chunk);
      },
      flush: (callback) => {
        this.hashes.set(key, hash.digest('hex'));
        callback();
      },
    });
  }

  /** The hashes keyed relative to the app root (`prefix` is the stripped top-level folder, or ''). */
  hashesUnder(prefix: string): Map<string, string> {
    for (const [link, target] of this.links) {
      const digest = this.hashes.get(target);
      if (digest !== undefined) this.hashes.set(link, digest);
    }
    if (prefix === '') return this.hashes;
    const out = new Map<string, string>();
    for (const [key, digest] of this.hashes) if (key.startsWith(`${prefix}/`)) out.set(key.slice(prefix.length + 1), digest);
    return out;
  }

  check(entry: ReadEntry): DeployError | undefined {
    this.entries += 1;
    if (this.entries > this.limits.maxFiles) return new DeployError('DEPLOY_ERR_TOO_MANY_FILES', `more than ${this.limits.maxFiles}`);
    if (!ALLOWED_TYPES.has(entry.type)) return new DeployError('DEPLOY_ERR_ENTRY_TYPE', `${entry.path} is a ${entry.type}`);
    const parts = entryParts(entry.path);
    if (parts === undefined) return new DeployError('DEPLOY_ERR_UNSAFE_PATH', entry.path);
    if (parts.length > this.limits.maxDepth) {
      return new DeployError('DEPLOY_ERR_TOO_DEEP', `${parts.length} levels, more than ${this.limits.maxDepth}`);
    }
    const linkFailure = checkLink(entry, parts);
    if (linkFailure) return linkFailure;
    if (entry.type === 'Link') this.links.push([parts.join('/'), (entryParts(String(entry.linkpath)) ?? []).join('/')]);
    if (FILE_TYPES.has(entry.type)) {
      this.bytes += entry.size ?? 0;
      if (this.bytes > this.limits.maxUnpackedBytes) {
        return new DeployError('DEPLOY_ERR_UNPACKED_TOO_LARGE', `more than ${this.limits.maxUnpackedBytes} bytes`);
      }
    }
    // No setuid/setgid/sticky bits and no group/other write (DESIGN.md "Facts measured").
    if (typeof entry.mode === 'number') entry.mode &= 0o755;
    return undefined;
  }
}

/** The path's segments, or undefined when it is absolute or climbs with `..`. */
export function entryParts(entryPath: string): string[] | undefined {
  const p = entryPath.replaceAll('\\', '/');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return undefined;
  const parts = p.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return undefined;
  return parts;
}

function checkLink(entry: ReadEntry, parts: string[]): DeployError | undefined {
  if (entry.type !== 'SymbolicLink' && entry.type !== 'Link') return undefined;
  const target = String(entry.linkpath ?? '').replaceAll('\\', '/');
  if (target === '' || target.startsWith('/') || /^[A-Za-z]:/.test(target)) {
    return new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${entry.path} -> ${target}`);
  }
  // A symlink resolves from its own folder; a hard link's target is a path inside the archive.
  const base = entry.type === 'SymbolicLink' ? parts.slice(0, -1).join('/') : '';
  const resolved = path.posix.normalize(path.posix.join(base || '.', target));
  if (resolved === '..' || resolved.startsWith('../') || (entry.type === 'Link' && entryParts(target) === undefined)) {
    return new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${entry.path} -> ${target}`);
  }
  return undefined;
}

async function assertGzip(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    if (bytesRead < 2 || buffer[0] !== 0x1f || buffer[1] !== 0x8b) throw new DeployError('DEPLOY_ERR_NOT_GZIP');
  } finally {
    await handle.close();
  }
}

/** A single top-level folder (what `npm pack` makes) is the app's root (DESIGN.md "Contracts"). */
async function appRoot(dest: string): Promise<string> {
  const names = await readdir(dest);
  if (names.length === 1) {
    const only = path.join(dest, names[0] as string);
    if ((await lstat(only)).isDirectory()) return only;
  }
  return dest;
}

const STORAGE_ERRNOS = new Set(['ENOSPC', 'EFBIG', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE']);
/** fs errors an archive causes by itself: a file where a folder must go, or the other way round. */
const CONFLICT_ERRNOS = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY']);

/** node-tar / zlib / fs errors → DEPLOY_ERR_* (node-tar keeps an aborting Error object as it is). */
function mapExtractError(err: unknown): DeployError {
  if (isDeployError(err)) return err;
  const e = err as NodeJS.ErrnoException & { tarCode?: string; entry?: { path?: string } };
  const detail = e?.message ?? String(err);
  // Name the entry, not the server's own paths.
  const where = `${e?.code} on ${e?.entry?.path ?? 'an entry'}`;
  if (typeof e?.code === 'string' && STORAGE_ERRNOS.has(e.code)) return new DeployError('DEPLOY_ERR_STORAGE', where, { cause: err });
  if (typeof e?.code === 'string' && CONFLICT_ERRNOS.has(e.code)) return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `entries conflict: ${where}`, { cause: err });
  if (e?.tarCode === 'TAR_ENTRY_UNSUPPORTED') return new DeployError('DEPLOY_ERR_ENTRY_TYPE', detail, { cause: err });
  if (/decompression ratio/.test(detail)) return new DeployError('DEPLOY_ERR_UNPACKED_TOO_LARGE', detail, { cause: err });
  if (e?.tarCode === 'TAR_ENTRY_ERROR' && /escape|'\.\.'|symlink/i.test(detail)) {
    return new DeployError('DEPLOY_ERR_LINK_ESCAPE', e?.entry?.path ?? detail, { cause: err });
  }
  if (typeof e?.syscall === 'string') return new DeployError('DEPLOY_ERR_STORAGE', where, { cause: err });
  return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', detail, { cause: err });
}
