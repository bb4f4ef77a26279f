import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fromRel } from './registry.js';

/**
 * What a release holds: relative path → sha256. Read from the per-release manifest the deploy
 * service writes (`.hotdeploy/files.json`); without one, the tree is listed and files are hashed
 * on demand (only those a comparison needs), and the hashes are kept for the next update.
 *
 * Synchronous on purpose: these are small files of an immutable release, on the page cache, read
 * while an update runs. Each `fs.promises` call is a libuv thread-pool round trip that lets the
 * worker's event loop run other work in between and, on a busy host, puts the update's thread back
 * in the scheduler's run queue: in PM2 workers the async reads cost several milliseconds per update.
 */
export interface FileIndex {
  /** The release directory (a realpath: the runtime realpaths every release it reads). */
  readonly dir: string;
  readonly fromManifest: boolean;
  /** Every regular file of the release; a value is undefined until hashed (listing fallback). */
  readonly files: Map<string, string | undefined>;
  /**
   * Every symbolic link of the release (not followed), when known: from a `files.json` that lists
   * them, or from the listing. Undefined for an older `files.json` without `links`: such an index
   * cannot tell a link from a missing path, so requests resolve with syscalls (index-probe.ts).
   */
  readonly links: ReadonlySet<string> | undefined;
  /**
   * sha256 of the `files.json` bytes the index stands for (read, or rebuilt from `changes.json`):
   * what a later release's `changes.json` must name as its base. Undefined for the listing fallback.
   */
  readonly manifestSha256?: string;
}

export const MANIFEST_FILE = '.hotdeploy/files.json';

export function readFileIndex(dir: string): FileIndex {
  const manifest = readManifestFiles(dir);
  if (manifest) return { dir, fromManifest: true, ...manifest };
  const files = new Map<string, string | undefined>();
  const links = new Set<string>();
  list(dir, '', files, links);
  return { dir, fromManifest: false, files, links };
}

/** The file's hash, or undefined when the release has no such regular file. */
export function hashOf(index: FileIndex, rel: string): string | undefined {
  const known = index.files.get(rel);
  if (known !== undefined || !index.files.has(rel)) return known;
  let content: Buffer;
  try {
    content = readFileSync(fromRel(index.dir, rel));
  } catch {
    return undefined;
  }
  const hash = createHash('sha256').update(content).digest('hex');
  index.files.set(rel, hash);
  return hash;
}

function readManifestFiles(dir: string): Pick<FileIndex, 'files' | 'links' | 'manifestSha256'> | undefined {
  let bytes: Buffer;
  let parsed: unknown;
  try {
    bytes = readFileSync(path.join(dir, MANIFEST_FILE));
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const m = parsed as { version?: unknown; algorithm?: unknown; files?: unknown; links?: unknown };
  // An unknown version or algorithm is not an error: the listing fallback gives the same answer.
  if (m.version !== 1 || m.algorithm !== 'sha256' || typeof m.files !== 'object' || m.files === null) return undefined;
  const files = new Map<string, string | undefined>();
  const entries = m.files as Record<string, unknown>;
  for (const rel in entries) {
    const hash = entries[rel];
    if (typeof hash === 'string') files.set(rel, hash);
  }
  return { files, links: linksOf(m.links), manifestSha256: createHash('sha256').update(bytes).digest('hex') };
}

/** `files.json`'s `links` (added later within version 1): absent or malformed, the index does not know them. */
export function linksOf(value: unknown): ReadonlySet<string> | undefined {
  if (!Array.isArray(value) || !value.every((rel) => typeof rel === 'string')) return undefined;
  return new Set(value as string[]);
}

/**
 * Regular files, and links without following them (a symlinked node_modules is not the release's:
 * its files are not listed, the link is, so resolution knows it cannot answer under it).
 */
function list(root: string, rel: string, files: Map<string, string | undefined>, links: Set<string>): void {
  const entries = readdirSync(rel ? path.join(root, rel) : root, { withFileTypes: true });
  for (const entry of entries) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (childRel !== '.hotdeploy') list(root, childRel, files, links);
    } else if (entry.isFile()) {
      files.set(childRel, undefined);
    } else if (entry.isSymbolicLink()) {
      links.add(childRel);
    }
  }
}
