/**
 * The unpacker's thread (extract.ts runs it in a worker_threads Worker). One job at a time: the
 * .tgz arrives in chunks, node-tar's Parser gunzips and parses each chunk synchronously, and every
 * entry is checked (extract-checks.ts) and then written with synchronous fs calls. Synchronous is
 * the point: node-tar's own async Unpack pays several thread-pool round trips per entry and was
 * 4-9x `tar -xzf` on a 5,000-file bundle (docs/BENCHMARKS.md, figure 6); on its own thread the
 * service's event loop never waits for it.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { Parser, type ReadEntry } from 'tar';
import { RESERVED_DIR } from './file-hashes.js';
import { EntryChecks, FILE_TYPES, isInside, linkTarget, type ExtractLimits } from './extract-checks.js';
import { DeployError, isDeployError } from './errors.js';

/**
 * A release already on disk whose files may be hard-linked instead of written again: its folder and
 * its `files.json` hashes (posix path → sha256).
 */
export interface LinkSource {
  dir: string;
  files: Record<string, string>;
}

export type ToWorker =
  | { type: 'start'; id: number; dest: string; limits: ExtractLimits; linkFrom?: LinkSource }
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };

/** An error as it crosses the thread: a DeployError by code, anything else by its errno fields. */
export interface WorkerError {
  deployCode?: string;
  detail?: string;
  message: string;
  code?: string;
  syscall?: string;
  tarCode?: string;
  entryPath?: string;
}

export interface WorkerResult {
  /** The single top-level folder that is the app's root (`package` of `npm pack`), or ''. */
  prefix: string;
  entries: number;
  /** Files hard-linked from the link source rather than written. */
  linked: number;
  /** Regular files (hard links included) relative to the root: [path, sha256, size]. */
  files: [string, string, number][];
  /** Symbolic links relative to the root (their targets stay inside it, `finish` checks). */
  links: string[];
}

export type FromWorker =
  | { type: 'ack'; id: number; bytes: number }
  | { type: 'done'; id: number; result: WorkerResult }
  | { type: 'failed'; id: number; error: WorkerError }
  | { type: 'aborted'; id: number };

type Kind = 'dir' | 'file' | 'symlink';

interface FileRecord {
  hash: string;
  size: number;
}

/** Writes checked entries under `dest` and never through anything but folders it made itself. */
class TreeWriter {
  private readonly kinds = new Map<string, Kind>();
  private readonly files = new Map<string, FileRecord>();
  private readonly symlinks: string[] = [];
  private readonly top = new Set<string>();
  private readonly checks: EntryChecks;
  /** The link source's files by content: sha256 → absolute path. */
  private readonly known = new Map<string, string>();
  private linked = 0;
  private readonly open = new Set<number>();
  /** The entry being written, to name it in an fs error. */
  current: string | undefined;

  constructor(private readonly dest: string, limits: ExtractLimits, linkFrom?: LinkSource) {
    this.checks = new EntryChecks(limits);
    mkdirSync(dest, { recursive: true });
    if (linkFrom) for (const [rel, hash] of Object.entries(linkFrom.files)) this.known.set(hash, path.join(linkFrom.dir, rel));
  }

  onEntry(entry: ReadEntry): void {
    this.current = entry.path;
    const parts = this.checks.check(entry);
    if (parts.length === 0) return void entry.resume();
    const rel = parts.join('/');
    this.top.add(parts[0] as string);
    this.ensureParent(entry.path, parts);
    if (FILE_TYPES.has(entry.type)) return this.file(entry, rel);
    if (entry.type === 'Directory') {
      const kind = this.kinds.get(rel);
      if (kind === undefined) this.mkdir(rel, ((entry.mode ?? 0o755) & 0o755) | 0o700);
      else if (kind !== 'dir') throw conflict(entry.path);
    } else if (entry.type === 'SymbolicLink') {
      this.clear(entry.path, rel);
      symlinkSync(String(entry.linkpath), this.abs(rel));
      this.kinds.set(rel, 'symlink');
      this.symlinks.push(linkTarget(entry, parts));
    } else {
      this.hardLink(entry, rel, linkTarget(entry, parts));
    }
    entry.resume();
  }

  /** Closes what a failed job left open; the caller removes `dest`. */
  close(): void {
    for (const fd of this.open) closeSync(fd);
    this.open.clear();
  }

  finish(): WorkerResult {
    const only = this.top.size === 1 ? ([...this.top][0] as string) : undefined;
    const prefix = only !== undefined && this.kinds.get(only) === 'dir' ? only : '';
    const reserved = prefix === '' ? RESERVED_DIR : `${prefix}/${RESERVED_DIR}`;
    if (this.kinds.has(reserved)) throw new DeployError('DEPLOY_ERR_RESERVED_PATH');
    // The string checks saw the archive's top; once a top-level folder is stripped, links must stay inside it.
    const escaping = this.symlinks.find((target) => !isInside(target, prefix));
    if (escaping !== undefined) throw new DeployError('DEPLOY_ERR_LINK_ESCAPE', `a link resolves to ${escaping}, outside the app`);
    const files: [string, string, number][] = [];
    const links: string[] = [];
    const cut = prefix === '' ? 0 : prefix.length + 1;
    const under = (rel: string): boolean => cut === 0 || rel.startsWith(`${prefix}/`);
    for (const [rel, { hash, size }] of this.files) if (under(rel)) files.push([rel.slice(cut), hash, size]);
    // `kinds`, not `symlinks`: a later entry may have replaced a link (`clear`).
    for (const [rel, kind] of this.kinds) if (kind === 'symlink' && under(rel)) links.push(rel.slice(cut));
    return { prefix, entries: this.checks.entries, linked: this.linked, files, links };
  }

  private file(entry: ReadEntry, rel: string): void {
    this.clear(entry.path, rel);
    const mode = (entry.mode ?? 0o644) & 0o755;
    if (this.known.size > 0 && entry.size > 0 && entry.size <= LINKABLE_BYTES) return this.fileOrLink(entry, rel, mode);
    const fd = openSync(this.abs(rel), 'wx', mode);
    this.open.add(fd);
    const hash: Hash = createHash('sha256');
    let size = 0;
    entry.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at);
    });
    entry.on('end', () => {
      if (entry.mtime) futimesSync(fd, entry.mtime, entry.mtime);
      this.open.delete(fd);
      closeSync(fd);
      this.kinds.set(rel, 'file');
      this.files.set(rel, { hash: hash.digest('hex'), size });
    });
  }

  /**
   * A small file is held until its sha256 is known: when the link source has the same bytes (same
   * sha256, size and mode) it is hard-linked from there, which costs a tenth of creating and
   * writing it (the bytes of a release never change once it is stored); otherwise it is written.
   */
  private fileOrLink(entry: ReadEntry, rel: string, mode: number): void {
    const hash: Hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    entry.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      chunks.push(chunk);
      size += chunk.length;
    });
    entry.on('end', () => {
      const digest = hash.digest('hex');
      if (!this.linkKnown(digest, size, mode, rel)) {
        const fd = openSync(this.abs(rel), 'wx', mode);
        this.open.add(fd);
        for (const chunk of chunks) for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at);
        if (entry.mtime) futimesSync(fd, entry.mtime, entry.mtime);
        this.open.delete(fd);
        closeSync(fd);
      }
      this.kinds.set(rel, 'file');
      this.files.set(rel, { hash: digest, size });
    });
  }

  /** Links the link source's copy of these bytes to `rel`; false when it has none usable. */
  private linkKnown(digest: string, size: number, mode: number, rel: string): boolean {
    const source = this.known.get(digest);
    if (source === undefined) return false;
    const stat = lstatSync(source, { throwIfNoEntry: false });
    // The index's word is checked against the disk: a regular file, same size, same permissions.
    if (!stat?.isFile() || stat.size !== size || (stat.mode & 0o777) !== (mode & ~UMASK & 0o777)) return false;
    try {
      linkSync(source, this.abs(rel));
    } catch (err) {
      // The source release may have been pruned meanwhile: write the file instead.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    this.linked += 1;
    return true;
  }

  private hardLink(entry: ReadEntry, rel: string, target: string): void {
    const record = this.files.get(target);
    if (this.kinds.get(target) !== 'file' || record === undefined) {
      throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `${entry.path} links to ${target}, which is not a file of the archive`);
    }
    this.clear(entry.path, rel);
    linkSync(this.abs(target), this.abs(rel));
    this.kinds.set(rel, 'file');
    this.files.set(rel, record);
  }

  /** A later entry replaces an earlier file or link at the same path (tar's rule); a folder it may not. */
  private clear(entryPath: string, rel: string): void {
    const kind = this.kinds.get(rel);
    if (kind === undefined) return;
    if (kind === 'dir') throw conflict(entryPath);
    unlinkSync(this.abs(rel));
    this.kinds.delete(rel);
    this.files.delete(rel);
  }

  /** Every folder above the entry exists and was made here: never a file, never a symlink. */
  private ensureParent(entryPath: string, parts: string[]): void {
    if (parts.length < 2) return;
    if (this.kinds.get(parts.slice(0, -1).join('/')) === 'dir') return;
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = i === 0 ? (parts[0] as string) : `${rel}/${parts[i] as string}`;
      const kind = this.kinds.get(rel);
      if (kind === 'dir') continue;
      if (kind === 'symlink') throw new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${entryPath} goes through the symlink ${rel}`);
      if (kind === 'file') throw conflict(entryPath);
      this.mkdir(rel, 0o755);
    }
  }

  private mkdir(rel: string, mode: number): void {
    mkdirSync(this.abs(rel), mode);
    this.kinds.set(rel, 'dir');
  }

  private abs(rel: string): string {
    return path.join(this.dest, rel);
  }
}

/** Files up to this size are held in memory until their hash says whether they can be linked. */
const LINKABLE_BYTES = 1024 * 1024;
/** Modes on disk are the entry's minus the process umask (read once: it is process-wide state). */
const UMASK = process.umask();

function conflict(entryPath: string): DeployError {
  return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `entries conflict at ${entryPath}`);
}

/** One upload's unpacking: gzip sniffed, chunks parsed as they come, the first failure ends it. */
class Job {
  private readonly parser = new Parser({ strict: true });
  private readonly tree: TreeWriter;
  private head = Buffer.alloc(0);
  private settled = false;

  constructor(readonly id: number, dest: string, limits: ExtractLimits, linkFrom: LinkSource | undefined, private readonly post: (msg: FromWorker) => void) {
    this.tree = new TreeWriter(dest, limits, linkFrom);
    this.parser.on('entry', (entry: ReadEntry) => this.guard(() => this.tree.onEntry(entry)));
    this.parser.on('error', (err: unknown) => this.fail(err));
    this.parser.on('end', () => this.guard(() => {
      const result = this.tree.finish();
      this.settled = true;
      this.post({ type: 'done', id: this.id, result });
    }));
  }

  write(data: Uint8Array): void {
    if (this.settled) return;
    const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.head.length < 2) {
      // The gzip magic, checked here so a plain tar (which node-tar would also read) is refused.
      this.head = Buffer.concat([this.head, chunk.subarray(0, 2 - this.head.length)]);
      if (this.head.length === 2 && (this.head[0] !== 0x1f || this.head[1] !== 0x8b)) {
        return this.fail(new DeployError('DEPLOY_ERR_NOT_GZIP'));
      }
    }
    this.guard(() => this.parser.write(chunk));
  }

  end(): void {
    if (this.settled) return;
    if (this.head.length < 2) return this.fail(new DeployError('DEPLOY_ERR_NOT_GZIP'));
    this.guard(() => this.parser.end());
  }

  abort(): void {
    if (!this.settled) {
      this.settled = true;
      this.tree.close();
    }
    this.post({ type: 'aborted', id: this.id });
  }

  private guard(step: () => void): void {
    if (this.settled) return;
    try {
      step();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.tree.close();
    } finally {
      this.post({ type: 'failed', id: this.id, error: describe(err, this.tree.current) });
    }
  }
}

function describe(err: unknown, entryPath?: string): WorkerError {
  if (isDeployError(err)) return { deployCode: err.code, detail: err.detail, message: err.message };
  const e = err as NodeJS.ErrnoException & { tarCode?: string; entry?: { path?: string } };
  const out: WorkerError = { message: e?.message ?? String(err) };
  if (typeof e?.code === 'string') out.code = e.code;
  if (typeof e?.syscall === 'string') out.syscall = e.syscall;
  if (typeof e?.tarCode === 'string') out.tarCode = e.tarCode;
  const where = typeof e?.entry?.path === 'string' ? e.entry.path : entryPath;
  if (where !== undefined) out.entryPath = where;
  return out;
}

if (parentPort) {
  const port = parentPort;
  let job: Job | undefined;
  port.on('message', (msg: ToWorker) => {
    const post = (out: FromWorker) => port.postMessage(out);
    if (msg.type === 'start') {
      try {
        job = new Job(msg.id, msg.dest, msg.limits, msg.linkFrom, post);
      } catch (err) {
        job = undefined;
        post({ type: 'failed', id: msg.id, error: describe(err) });
      }
      return;
    }
    if (job === undefined || job.id !== msg.id) {
      if (msg.type === 'chunk') post({ type: 'ack', id: msg.id, bytes: msg.data.byteLength });
      if (msg.type === 'abort') post({ type: 'aborted', id: msg.id });
      return;
    }
    if (msg.type === 'chunk') {
      job.write(msg.data);
      post({ type: 'ack', id: msg.id, bytes: msg.data.byteLength });
    } else if (msg.type === 'end') {
      job.end();
    } else {
      job.abort();
      job = undefined;
    }
  });
}
