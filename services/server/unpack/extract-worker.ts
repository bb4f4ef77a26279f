/**
 * The unpacker's second thread (extract.ts runs it in a worker_threads Worker beside the inflater,
 * inflate-worker.ts). Each job's tar bytes arrive from the inflater in blocks, the tar
 * reader (tar-reader.ts) parses each block synchronously, and every entry is checked
 * (extract-checks.ts) and then written with synchronous fs calls. Synchronous is the point: node-tar's
 * own async Unpack pays several thread-pool round trips per entry and is 4-9x `tar -xzf` on a
 * 5,000-file bundle (docs/BENCHMARKS.md, figure 6); on its own thread the service's event loop never
 * waits for it.
 */
import { createHash, hash, type Hash } from 'node:crypto';
import { closeSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type MessagePort, parentPort } from 'node:worker_threads';
import { assertNever } from '../../../agent/common/guards.js';
import { RESERVED_DIR } from '../file-hashes.js';
import { EntryChecks, FILE_TYPES, linkTarget, staysInside, type ExtractLimits } from './extract-checks.js';
import { workerError, type FromWorker, type FromWriter, type LinkSource, type StartJob, type ToWriter, type WorkerError, type WorkerResult } from './extract-protocol.js';
import { DeployError } from '../errors.js';
import { TarReader, type EntrySink, type TarEntry } from './tar-reader.js';

type Kind = 'dir' | 'file' | 'symlink';

interface FileRecord {
  hash: string;
  size: number;
}

/** Writes checked entries under `dest` and never through anything but folders it made itself. */
class TreeWriter {
  private readonly kinds = new Map<string, Kind>();
  private readonly files = new Map<string, FileRecord>();
  /** Each symlink's target as the archive gives it, by path (`kinds` says whether it is still a link). */
  private readonly linkpaths = new Map<string, string>();
  private readonly top = new Set<string>();
  private readonly checks: EntryChecks;
  /** The link source's files by content: sha256 → absolute path. */
  private readonly known = new Map<string, string>();
  private linked = 0;
  private readonly open = new Set<number>();
  /** The entry being written, to name it in an fs error. */
  current: string | undefined;

  private readonly root: string;

  constructor(dest: string, limits: ExtractLimits, linkFrom?: LinkSource, private readonly delta = false) {
    this.root = path.resolve(dest);
    this.checks = new EntryChecks(limits);
    mkdirSync(dest, { recursive: true });
    if (linkFrom) for (const [rel, hash] of Object.entries(linkFrom.files)) this.known.set(hash, path.join(linkFrom.dir, rel));
  }

  /** Checks the entry and makes it; a file's bytes then go to the sink returned. */
  onEntry(entry: TarEntry): EntrySink | undefined {
    this.current = entry.path;
    const parts = this.checks.check(entry);
    if (parts.length === 0) return undefined;
    const rel = parts.join('/');
    this.top.add(parts[0] as string);
    this.ensureParent(entry.path, parts, rel);
    if (FILE_TYPES.has(entry.type)) return this.file(entry, rel);
    if (entry.type === 'Directory') {
      const kind = this.kinds.get(rel);
      if (kind === undefined) this.mkdir(rel, ((entry.mode ?? 0o755) & 0o755) | 0o700);
      else if (kind !== 'dir') throw conflict(entry.path);
    } else if (entry.type === 'SymbolicLink') {
      this.clear(entry.path, rel);
      symlinkSync(entry.linkpath, this.abs(rel));
      this.kinds.set(rel, 'symlink');
      this.linkpaths.set(rel, entry.linkpath);
    } else {
      this.hardLink(entry, rel, linkTarget(entry, parts));
    }
    return undefined;
  }

  /** Closes what a failed job left open; the caller removes `dest`. */
  close(): void {
    for (const fd of this.open) closeSync(fd);
    this.open.clear();
  }

  finish(): WorkerResult {
    const only = this.top.size === 1 ? ([...this.top][0] as string) : undefined;
    const prefix = !this.delta && only !== undefined && this.kinds.get(only) === 'dir' ? only : '';
    const reserved = prefix === '' ? RESERVED_DIR : `${prefix}/${RESERVED_DIR}`;
    if (this.delta) this.checkDeltaReserved();
    else if (this.kinds.has(reserved)) throw new DeployError('DEPLOY_ERR_RESERVED_PATH');
    const files: [string, string, number][] = [];
    const links: string[] = [];
    const cut = prefix === '' ? 0 : prefix.length + 1;
    const under = (rel: string): boolean => cut === 0 || rel.startsWith(`${prefix}/`);
    for (const [rel, { hash, size }] of this.files) if (under(rel)) files.push([rel.slice(cut), hash, size]);
    // `kinds`, not `linkpaths`: a later entry may have replaced a link (`clear`).
    for (const [rel, kind] of this.kinds) if (kind === 'symlink' && under(rel)) links.push(rel.slice(cut));
    // The string checks saw each link alone, from the archive's top: links must stay inside the
    // release (the stripped top-level folder) as the kernel follows them, through one another.
    const targetOf = (rel: string): string | undefined => {
      const at = cut === 0 ? rel : `${prefix}/${rel}`;
      return this.kinds.get(at) === 'symlink' ? this.linkpaths.get(at) : undefined;
    };
    const escaping = links.find((rel) => !staysInside(rel, targetOf));
    if (escaping !== undefined) throw new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${escaping} -> ${targetOf(escaping) ?? ''} leads outside the app`);
    return { prefix, entries: this.checks.entries, linked: this.linked, files, links };
  }

  /** A delta may carry its list of removed paths under the reserved folder, and nothing else there. */
  private checkDeltaReserved(): void {
    for (const [rel, kind] of this.kinds) {
      if (rel !== RESERVED_DIR && !rel.startsWith(`${RESERVED_DIR}/`)) continue;
      if (rel === RESERVED_DIR ? kind !== 'dir' : rel !== DELTA_REMOVED || kind !== 'file') throw new DeployError('DEPLOY_ERR_RESERVED_PATH', rel);
    }
  }

  private file(entry: TarEntry, rel: string): EntrySink {
    this.clear(entry.path, rel);
    const mode = (entry.mode ?? 0o644) & 0o755;
    if (this.known.size > 0 && entry.size > 0 && entry.size <= LINKABLE_BYTES) return this.fileOrLink(entry, rel, mode);
    const fd = openSync(this.abs(rel), 'wx', mode);
    this.open.add(fd);
    const hash = new ContentHash(entry.size);
    return {
      data: (chunk) => {
        hash.update(chunk);
        for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at);
      },
      end: () => {
        if (entry.mtime) futimesSync(fd, entry.mtime, entry.mtime);
        this.open.delete(fd);
        closeSync(fd);
        this.kinds.set(rel, 'file');
        this.files.set(rel, { hash: hash.digest(), size: hash.size });
      },
    };
  }

  /**
   * A small file is held until its sha256 is known: when the link source has the same bytes (same
   * sha256, size and mode) it is hard-linked from there, which costs a tenth of creating and
   * writing it (the bytes of a release never change once it is stored); otherwise it is written.
   */
  private fileOrLink(entry: TarEntry, rel: string, mode: number): EntrySink {
    const hash = new ContentHash(entry.size);
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => {
        hash.update(chunk);
        // A view of the inflater's block lives only while that block is parsed (`end` follows the
        // body's last piece at once); a piece that leaves the body unfinished is copied, as its
        // block goes back to the inflater to be filled again.
        chunks.push(hash.size === entry.size ? chunk : Buffer.from(chunk));
      },
      end: () => {
        const digest = hash.digest();
        const size = hash.size;
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
      },
    };
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

  private hardLink(entry: TarEntry, rel: string, target: string): void {
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
  private ensureParent(entryPath: string, parts: string[], entryRel: string): void {
    if (parts.length < 2) return;
    if (this.kinds.get(entryRel.slice(0, entryRel.lastIndexOf('/'))) === 'dir') return;
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

  /** `rel`'s segments are checked (none empty, '.' or '..'), so joining needs no normalizing. */
  private abs(rel: string): string {
    return `${this.root}/${rel}`;
  }
}

/**
 * A file's sha256 (hex) as its body arrives. Most bodies arrive whole, in one view of a block (a
 * 1 MB block holds many small files): those are hashed in one call when the body ends, without a
 * Hash object (building one, a stream object, and its digest are ~30 % of the per-file hashing in
 * a CPU profile of figure 6). A body split over blocks is hashed piece by piece, as it comes, so no
 * view is kept past its write.
 */
class ContentHash {
  size = 0;
  private whole: Buffer | undefined;
  private hash: Hash | undefined;

  constructor(private readonly expected: number) {}

  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.hash === undefined && this.whole === undefined && chunk.length === this.expected) {
      this.whole = chunk;
      return;
    }
    if (this.hash === undefined) {
      this.hash = createHash('sha256');
      if (this.whole !== undefined) this.hash.update(this.whole);
      this.whole = undefined;
    }
    this.hash.update(chunk);
  }

  digest(): string {
    if (this.hash !== undefined) return this.hash.digest('hex');
    return hash('sha256', this.whole ?? EMPTY);
  }
}

const EMPTY = Buffer.alloc(0);

/** A delta's list of removed paths (delta.ts reads it). */
const DELTA_REMOVED = `${RESERVED_DIR}/removed.json`;

/** Files up to this size are held in memory until their hash says whether they can be linked. */
const LINKABLE_BYTES = 1024 * 1024;
/** Modes on disk are the entry's minus the process umask (read once: it is process-wide state). */
const UMASK = process.umask();

function conflict(entryPath: string): DeployError {
  return new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `entries conflict at ${entryPath}`);
}

/** One upload's tar stream: parsed block by block as the inflater sends it, the first failure ends it. */
class Job {
  private readonly reader: TarReader;
  private readonly tree: TreeWriter;
  private settled = false;

  constructor(readonly id: number, start: StartJob, private readonly post: (msg: FromWorker) => void) {
    this.tree = new TreeWriter(start.dest, start.limits, start.linkFrom, start.delta);
    this.reader = new TarReader((entry) => this.tree.onEntry(entry));
  }

  get over(): boolean {
    return this.settled;
  }

  write(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.guard(() => this.reader.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  end(): void {
    this.guard(() => {
      this.reader.end();
      const result = this.tree.finish();
      this.settled = true;
      this.post({ type: 'done', id: this.id, result });
    });
  }

  /** The inflater failed: stop writing, then report its error. */
  failWith(error: WorkerError): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.tree.close();
    } finally {
      this.post({ type: 'failed', id: this.id, error });
    }
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
    this.failWith(workerError(err, this.tree.current));
  }
}

/**
 * Everything comes from the inflater's port; outcomes go to the service, `parsed` / `settled` back.
 * Each data block goes back with its `parsed`: nothing here holds a view of it once it is parsed.
 * Jobs by id, as in the inflater: a job is forgotten once settled; what still comes for it is dropped.
 */
function serve(inflater: MessagePort, service: (msg: FromWorker) => void): void {
  const jobs = new Map<number, Job>();
  const reply = (msg: FromWriter, transfer: ArrayBuffer[] = []) => inflater.postMessage(msg, transfer);
  const start = (msg: StartJob): void => {
    const id = msg.id;
    const post = (out: FromWorker): void => {
      service(out);
      if (out.type === 'ack') return;
      jobs.delete(id);
      reply({ type: 'settled', id });
    };
    try {
      jobs.set(id, new Job(id, msg, post));
    } catch (err) {
      post({ type: 'failed', id, error: workerError(err) });
    }
  };
  inflater.on('message', (msg: ToWriter) => {
    if (msg.type === 'start') return start(msg);
    const job = jobs.get(msg.id);
    if (job === undefined) {
      if (msg.type === 'abort') service({ type: 'aborted', id: msg.id });
      return;
    }
    if (msg.type === 'data') {
      job.write(msg.data);
      const block = msg.data.byteLength > 0 ? (msg.data.buffer as ArrayBuffer) : undefined;
      if (!job.over) reply({ type: 'parsed', id: msg.id, inflated: msg.data.byteLength, compressed: msg.compressed, ...(block ? { block } : {}) }, block ? [block] : []);
    } else if (msg.type === 'end') job.end();
    else if (msg.type === 'fail') job.failWith(msg.error);
    else if (msg.type === 'abort') job.abort();
    else assertNever(msg);
  });
}

if (parentPort) {
  const service = parentPort;
  service.once('message', (msg: { type: 'connect'; port: MessagePort }) => serve(msg.port, (out) => service.postMessage(out)));
}
