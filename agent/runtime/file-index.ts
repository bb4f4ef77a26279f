import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fromRel } from './registry.js';

/**
 * What a release holds: relative path → sha256. Read from the per-release manifest the deploy
 * service writes (`.hotdeploy/files.json`); without one, the tree is listed and files are hashed
 * on demand (only those a comparison needs), and the hashes are kept for the next update.
 */
export interface FileIndex {
  readonly dir: string;
  readonly fromManifest: boolean;
  /** Every regular file of the release; a value is undefined until hashed (listing fallback). */
  readonly files: Map<string, string | undefined>;
}

export const MANIFEST_FILE = '.hotdeploy/files.json';

export async function readFileIndex(dir: string): Promise<FileIndex> {
  const manifest = await readManifestFiles(dir);
  if (manifest) return { dir, fromManifest: true, files: manifest };
  const files = new Map<string, string | undefined>();
  await list(dir, '', files);
  return { dir, fromManifest: false, files };
}

/** The file's hash, or undefined when the release has no such regular file. */
export async function hashOf(index: FileIndex, rel: string): Promise<string | undefined> {
  if (!index.files.has(rel)) return undefined;
  const known = index.files.get(rel);
  if (known !== undefined) return known;
  const content = await readFile(fromRel(index.dir, rel)).catch(() => undefined);
  if (content === undefined) return undefined;
  const hash = createHash('sha256').update(content).digest('hex');
  index.files.set(rel, hash);
  return hash;
}

async function readManifestFiles(dir: string): Promise<Map<string, string | undefined> | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const m = parsed as { version?: unknown; algorithm?: unknown; files?: unknown };
  // An unknown version or algorithm is not an error: the listing fallback gives the same answer.
  if (m.version !== 1 || m.algorithm !== 'sha256' || typeof m.files !== 'object' || m.files === null) return undefined;
  const files = new Map<string, string | undefined>();
  for (const [rel, hash] of Object.entries(m.files as Record<string, unknown>)) {
    if (typeof hash === 'string') files.set(rel, hash);
  }
  return files;
}

/** Regular files only: links are skipped (a symlinked node_modules is not the release's). */
async function list(root: string, rel: string, into: Map<string, string | undefined>): Promise<void> {
  const entries = await readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
  for (const entry of entries) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (childRel !== '.hotdeploy') await list(root, childRel, into);
    } else if (entry.isFile()) {
      into.set(childRel, undefined);
    }
  }
}
