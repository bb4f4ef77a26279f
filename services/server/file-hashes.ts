import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where a release keeps hotdeploy's own files; bundles may not bring one (DEPLOY_ERR_RESERVED_PATH). */
export const RESERVED_DIR = '.hotdeploy';

/**
 * `<release>/.hotdeploy/files.json`: the worker runtime diffs two of these to find changed modules,
 * and resolves the app's relative requests from one without a syscall per candidate.
 */
export interface FileHashManifest {
  version: 1;
  algorithm: 'sha256';
  files: Record<string, string>;
  /**
   * The release's symbolic links (posix paths relative to the root, sorted). Optional: releases
   * stored before it was added have none, and then the runtime resolves with syscalls (it cannot
   * tell a path that is a link from one that is missing).
   */
  links?: string[];
}

/** A release's file hashes (and links) as stored, and the sha256 of the stored `files.json` bytes (its identity). */
export interface StoredFileHashes {
  files: Record<string, string>;
  links?: string[];
  sha256: string;
}

/**
 * `<release>/.hotdeploy/changes.json`: how a release differs from the release it was unpacked on top
 * of (`base`, the app's current release at ingest). A worker on exactly that base — the same release
 * folder, and the same `files.json` bytes it read — builds the new file index from its own and this
 * instead of reading the whole `files.json`, and diffs only these paths (agent/runtime/file-index.ts).
 */
export interface ReleaseChanges {
  version: 1;
  base: {
    /** The base release's folder name (its version), beside this one. */
    version: string;
    /** sha256 of the base's `files.json` bytes. */
    files: string;
  };
  /** sha256 of this release's `files.json` bytes: the identity of the index a worker builds. */
  files: string;
  /** Added or modified files: posix path → sha256. */
  changed: Record<string, string>;
  /** Files of the base that this release does not have. */
  removed: string[];
  /** This release's whole `links` list, as in its `files.json` (absent when that has none). */
  links?: string[];
}

export const FILES_FILE = 'files.json';
export const CHANGES_FILE = 'changes.json';

/** Writes `files.json`; returns what the release now stores, with the sha256 of the bytes written. */
export async function writeFileHashes(root: string, manifest: FileHashManifest): Promise<StoredFileHashes> {
  const { bytes, stored } = encodeFileHashes(manifest);
  await mkdir(path.join(root, RESERVED_DIR), { recursive: true });
  await writeFile(path.join(root, RESERVED_DIR, FILES_FILE), bytes);
  return stored;
}

/** The bytes of `files.json` for `manifest`, and what the release stores with them (their sha256), before any is written. */
export function encodeFileHashes(manifest: FileHashManifest): { bytes: string; stored: StoredFileHashes } {
  const bytes = JSON.stringify(manifest) + '\n';
  return { bytes, stored: { files: manifest.files, ...(manifest.links ? { links: manifest.links } : {}), sha256: sha256Of(bytes) } };
}

/** A stored release's `files.json`, hashed as read; undefined when it is missing or not one. */
export async function readFileHashes(dir: string): Promise<StoredFileHashes | undefined> {
  return parseFileHashes(await readFile(path.join(dir, RESERVED_DIR, FILES_FILE)).catch(() => undefined));
}

/**
 * `readFileHashes` with one synchronous read, for what a push waits on (the current release's files
 * for the client's diff, a delta's base): the file is parsed on the event loop either way.
 */
export function readFileHashesNow(dir: string): StoredFileHashes | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path.join(dir, RESERVED_DIR, FILES_FILE));
  } catch {
    return undefined;
  }
  return parseFileHashes(bytes);
}

function parseFileHashes(bytes: Buffer | undefined): StoredFileHashes | undefined {
  if (bytes === undefined) return undefined;
  let parsed: Partial<FileHashManifest>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Partial<FileHashManifest>;
  } catch {
    return undefined;
  }
  if (parsed?.algorithm !== 'sha256' || typeof parsed.files !== 'object' || parsed.files === null) return undefined;
  return { files: parsed.files, ...(Array.isArray(parsed.links) ? { links: parsed.links } : {}), sha256: sha256Of(bytes) };
}

/** What `next` changes relative to `base` (the release named `baseVersion`). */
export function releaseChanges(baseVersion: string, base: StoredFileHashes, next: StoredFileHashes): ReleaseChanges {
  const changed: Record<string, string> = {};
  for (const rel in next.files) {
    const hash = next.files[rel] as string;
    if (base.files[rel] !== hash) changed[rel] = hash;
  }
  const removed = Object.keys(base.files).filter((rel) => !Object.hasOwn(next.files, rel));
  const changes: ReleaseChanges = { version: 1, base: { version: baseVersion, files: base.sha256 }, files: next.sha256, changed, removed };
  return next.links ? { ...changes, links: next.links } : changes;
}

export async function writeReleaseChanges(root: string, changes: ReleaseChanges): Promise<void> {
  await writeFile(path.join(root, RESERVED_DIR, CHANGES_FILE), JSON.stringify(changes) + '\n');
}

function sha256Of(bytes: string | Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
