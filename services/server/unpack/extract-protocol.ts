/**
 * The unpacker's messages. An unpacker is two threads, as `tar -xzf` is two processes: the inflater
 * (inflate-worker.ts) gunzips, the writer (extract-worker.ts) parses the tar and writes the files,
 * so inflating the next megabyte overlaps writing the last one. The service talks to the inflater
 * (start, chunks, end, abort) and hears acks from it; everything the writer gets comes through the
 * inflater's port, in order; only the writer settles a job (done, failed, aborted), because only it
 * knows when nothing more will be written to `dest`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ExtractLimits } from './extract-checks.js';
import { isDeployError } from '../errors.js';

/**
 * A release already on disk whose files may be hard-linked instead of written again: its folder and
 * its `files.json` hashes (posix path → sha256).
 */
export interface LinkSource {
  dir: string;
  files: Record<string, string>;
}

export interface StartJob {
  type: 'start';
  id: number;
  dest: string;
  limits: ExtractLimits;
  linkFrom?: LinkSource;
  /**
   * A delta's files (delta.ts): paths are the release's own (no top-level folder is stripped), and
   * `.hotdeploy/removed.json` is the one entry it may have under the reserved folder.
   */
  delta?: boolean;
  /** Where the inflater keeps the .tgz itself (written and hashed as it arrives); the writer never sees it. */
  keep?: string;
}

/** Service → inflater. `connect` comes once, when the pair is made. */
export type ToInflater =
  | { type: 'connect'; port: MessagePort }
  | StartJob
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };

/**
 * Inflater → writer. `compressed` counts the .tgz bytes this data completes: the writer hands them
 * back once parsed, and the inflater acks them to the service. `fail` is the inflater's own failure
 * (not gzip, corrupt, too large), which the writer reports once it has stopped writing.
 */
export type ToWriter =
  | StartJob
  | { type: 'data'; id: number; data: Uint8Array; compressed: number }
  | { type: 'end'; id: number }
  | { type: 'fail'; id: number; error: WorkerError }
  | { type: 'abort'; id: number };

/**
 * Writer → inflater: data parsed (its bytes may be released; `block`, the data's buffer, comes back to
 * be filled again), or the job settled (drop the rest).
 */
export type FromWriter =
  | { type: 'parsed'; id: number; inflated: number; compressed: number; block?: ArrayBuffer }
  | { type: 'settled'; id: number };

/**
 * To the service: from the inflater, acks (with the used chunks' buffers that are whole blocks, to be
 * filled again) and (when it keeps the .tgz) `kept` once the upload's last byte is on disk and its
 * file closed; from the writer, the outcome.
 */
export type FromWorker =
  | { type: 'ack'; id: number; bytes: number; blocks?: ArrayBuffer[] }
  | { type: 'kept'; id: number; sha256: string; bytes: number }
  | { type: 'kept'; id: number; error: WorkerError }
  | { type: 'done'; id: number; result: WorkerResult }
  | { type: 'failed'; id: number; error: WorkerError }
  | { type: 'aborted'; id: number };

/** An error as it crosses a thread: a DeployError by code, anything else by its errno fields. */
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

/** An error of either thread as it crosses to the service: a DeployError by code, anything else (fs, zlib, node-tar) by its fields. */
export function workerError(err: unknown, entryPath?: string): WorkerError {
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
