/**
 * A release built from a delta: the files a client changed or added (unpacked by the same guarded
 * extraction as a bundle, extract.ts with `delta`), the paths it removed, and everything else
 * hard-linked from the base release, whose files never change once stored. The result is checked
 * against the manifest digest the client declared before a single link is made.
 */
import { linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { DeployError } from '../errors.js';
import { RESERVED_DIR } from '../file-hashes.js';
import { manifestDigest, type SourceManifest } from '../source-manifest.js';
import { entryParts, staysInside, type ExtractLimits } from './extract-checks.js';
import type { ExtractResult } from './extract.js';

/** The delta's list of removed paths: a JSON array of posix paths relative to the release root. */
export const REMOVED_FILE = `${RESERVED_DIR}/removed.json`;

/** The release a delta applies to: its folder, its sources, and their unpacked bytes. */
export interface DeltaBase {
  dir: string;
  sources: SourceManifest;
  bytes: number;
}

/** Link and mkdir calls between two turns of the event loop: a 3,000-file base does not hold it. */
const SLICE = 256;

/**
 * Completes the unpacked delta `extracted` into the whole release: removals and limits checked,
 * the declared digest compared, then every base file and link the delta leaves alone placed beside
 * the delta's own files. Returns the release as an unpacked full bundle would be described.
 */
export async function assembleDelta(extracted: ExtractResult, base: DeltaBase, declared: string, limits: ExtractLimits): Promise<ExtractResult> {
  const { root } = extracted;
  const { removed, listBytes } = readRemoved(root, base.sources, limits);
  // At most one file to remove: the unpacker lets a delta's reserved folder hold its list of removals and nothing else (extract-worker.ts).
  rmSync(path.join(root, RESERVED_DIR), { recursive: true, force: true });
  const added = { ...extracted.manifest.files };
  delete added[REMOVED_FILE];
  const addedLinks = new Set(extracted.manifest.links ?? []);
  const gone = new Set(removed);
  for (const rel of removed) {
    if (rel === RESERVED_DIR || rel.startsWith(`${RESERVED_DIR}/`)) throw new DeployError('DEPLOY_ERR_RESERVED_PATH', `the delta removes ${rel}`);
    if (!Object.hasOwn(base.sources.files, rel) && !base.sources.links.includes(rel)) {
      throw new DeployError('DEPLOY_ERR_DELTA_UNKNOWN_PATH', `${rel} is not in the base release`);
    }
  }
  // What the base keeps: neither removed nor replaced by the delta (by a file or by a link).
  const kept = Object.keys(base.sources.files).filter((rel) => !gone.has(rel) && !Object.hasOwn(added, rel) && !addedLinks.has(rel));
  const keptLinks = base.sources.links.filter((rel) => !gone.has(rel) && !Object.hasOwn(added, rel) && !addedLinks.has(rel));
  const files: Record<string, string> = { ...added };
  for (const rel of kept) files[rel] = base.sources.files[rel] as string;
  const manifest: SourceManifest = { files, links: [...keptLinks, ...addedLinks] };
  if (kept.length + keptLinks.length + extracted.entries > limits.maxFiles) {
    throw new DeployError('DEPLOY_ERR_TOO_MANY_FILES', `more than ${limits.maxFiles} with the base's files`);
  }
  const bytes = base.bytes - replacedBytes(base, kept) + extracted.bytes - listBytes;
  if (bytes > limits.maxUnpackedBytes) throw new DeployError('DEPLOY_ERR_UNPACKED_TOO_LARGE', `more than ${limits.maxUnpackedBytes} bytes with the base's files`);
  const actual = manifestDigest(manifest);
  if (actual !== declared) throw new DeployError('DEPLOY_ERR_DELTA_MISMATCH', `the base plus the delta make ${actual}, the client declared ${declared}`);
  checkLinks(base.dir, keptLinks, root, addedLinks);
  await placeFromBase(base.dir, root, kept, keptLinks);
  const sorted: Record<string, string> = {};
  for (const rel of Object.keys(files).sort()) sorted[rel] = files[rel] as string;
  return {
    root, entries: extracted.entries + kept.length + keptLinks.length, files: Object.keys(files).length, bytes, linked: kept.length,
    manifest: { version: 1, algorithm: 'sha256', files: sorted, links: [...manifest.links].sort() },
  };
}

/**
 * `.hotdeploy/removed.json` of the unpacked delta: an array of canonical relative paths (none when
 * absent). It is read and parsed whole on the service's event loop (one read of a file bounded
 * here, as the links of delta.ts are placed): one longer than a list of every path of the base
 * could be written (indented, each character escaped) is refused unread, where maxUnpackedBytes
 * alone would let it be a gigabyte of JSON.
 */
function readRemoved(root: string, base: SourceManifest, limits: ExtractLimits): { removed: string[]; listBytes: number } {
  const file = path.join(root, REMOVED_FILE);
  const size = lstatSync(file, { throwIfNoEntry: false })?.size;
  if (size === undefined) return { removed: [], listBytes: 0 };
  const most = 1024 + 8 * Buffer.byteLength(JSON.stringify([...Object.keys(base.files), ...base.links]));
  if (size > most) throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `${REMOVED_FILE} is ${size} bytes, more than a list of every path of the base (${most})`);
  const text = readFileSync(file, 'utf8');
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `${REMOVED_FILE} is not JSON`);
  }
  if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string')) {
    throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `${REMOVED_FILE} is not an array of paths`);
  }
  if (list.length > limits.maxFiles) throw new DeployError('DEPLOY_ERR_TOO_MANY_FILES', `${list.length} removals`);
  for (const rel of list) {
    // The same string checks as an archive entry's path, and one spelling per path (no `./`, `//`).
    if (entryParts(rel)?.join('/') !== rel || rel === '') throw new DeployError('DEPLOY_ERR_UNSAFE_PATH', `removed path ${JSON.stringify(rel)}`);
  }
  return { removed: list, listBytes: Buffer.byteLength(text) };
}

/**
 * Every link of the release, the base's kept ones and the delta's, must stay inside it as the kernel
 * follows them through one another (a delta's link may climb out through a link of the base).
 */
function checkLinks(baseDir: string, kept: string[], root: string, added: ReadonlySet<string>): void {
  const targets = new Map<string, string>();
  for (const rel of kept) targets.set(rel, readlinkSync(path.join(baseDir, rel)));
  for (const rel of added) targets.set(rel, readlinkSync(path.join(root, rel)));
  for (const rel of targets.keys()) {
    if (!staysInside(rel, (at) => targets.get(at))) throw new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${rel} -> ${targets.get(rel) ?? ''} leads outside the app`);
  }
}

/** Bytes of the base's files the delta removes or replaces (stat'ed: only the few the delta names). */
function replacedBytes(base: DeltaBase, kept: string[]): number {
  const keptSet = new Set(kept);
  let total = 0;
  for (const rel of Object.keys(base.sources.files)) {
    if (!keptSet.has(rel)) total += lstatSync(path.join(base.dir, rel), { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}

/**
 * Hard links of the base's kept files, copies of its kept symlinks, and the folders above them. A
 * folder is made only where nothing is; a file or a link of the delta where the base needs a folder
 * (or the other way round) is a conflict, never written through.
 */
async function placeFromBase(from: string, to: string, files: string[], links: string[]): Promise<void> {
  const dirs = new Set<string>();
  const ensureParent = (rel: string): void => {
    const parent = path.posix.dirname(rel);
    if (parent === '.' || dirs.has(parent)) return;
    ensureParent(parent);
    const stat = lstatSync(path.join(to, parent), { throwIfNoEntry: false });
    if (stat === undefined) mkdirSync(path.join(to, parent), 0o755);
    else if (!stat.isDirectory()) throw conflict(rel, parent);
    dirs.add(parent);
  };
  const steps: Array<() => void> = [
    ...files.map((rel) => () => {
      ensureParent(rel);
      place(rel, () => linkSync(path.join(from, rel), path.join(to, rel)));
    }),
    ...links.map((rel) => () => {
      ensureParent(rel);
      place(rel, () => symlinkSync(readlinkSync(path.join(from, rel)), path.join(to, rel)));
    }),
  ];
  for (let i = 0; i < steps.length; i += SLICE) {
    for (const step of steps.slice(i, i + SLICE)) step();
    if (i + SLICE < steps.length) await new Promise((resolve) => setImmediate(resolve));
  }
}

function place(rel: string, make: () => void): void {
  try {
    make();
  } catch (err) {
    // The delta made a folder where the base has this file.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(rel, rel);
    throw err;
  }
}

function conflict(rel: string, at: string): DeployError {
  return new DeployError('DEPLOY_ERR_DELTA_MISMATCH', `the base's ${rel} conflicts with the delta at ${at}`);
}
