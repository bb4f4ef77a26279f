import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { readFileHashes, readFileHashesNow, RESERVED_DIR, type StoredFileHashes } from './file-hashes.js';

/**
 * A release's own files, as its bundle brought them: `files.json` without the node_modules the
 * host installed. What a client packs, diffs and sends a delta of; its digest (`manifestDigest`) is
 * the release's identity, whichever way the files arrived (a full bundle or a delta).
 */
export interface SourceManifest {
  /** posix path → sha256 (hex) of the file's bytes. */
  files: Record<string, string>;
  /** Symbolic links (posix paths). */
  links: string[];
}

/** Where an installed node_modules lives; what a bundle brings there is the app's own. */
const INSTALLED_PREFIX = 'node_modules/';
/** Present in a release whose node_modules the host installed (install/dependencies.ts writes it). */
const INSTALL_RECORD = 'install.json';

/**
 * sha256 of the manifest in one canonical form (paths sorted by code unit, JSON without spaces), so
 * the CLI and the service compute it alike from the same files.
 */
export function manifestDigest(manifest: SourceManifest): string {
  const files: Record<string, string> = {};
  for (const rel of Object.keys(manifest.files).sort()) files[rel] = manifest.files[rel] as string;
  const canonical = JSON.stringify({ version: 1, algorithm: 'sha256', files, links: [...manifest.links].sort() });
  return createHash('sha256').update(canonical).digest('hex');
}

/** The sources part of a release's file index: without an installed node_modules when `installed`. */
export function sourcesOf(index: { files: Record<string, string>; links?: string[] }, installed: boolean): SourceManifest {
  const links = index.links ?? [];
  if (!installed) return { files: index.files, links };
  const files: Record<string, string> = {};
  for (const rel in index.files) if (!rel.startsWith(INSTALLED_PREFIX)) files[rel] = index.files[rel] as string;
  return { files, links: links.filter((rel) => !rel.startsWith(INSTALLED_PREFIX)) };
}

/** A stored release folder's `files.json` and its sources; undefined when `files.json` cannot be read. */
export async function readReleaseSources(dir: string): Promise<{ hashes: StoredFileHashes; sources: SourceManifest } | undefined> {
  const [hashes, installed] = await Promise.all([readFileHashes(dir), access(path.join(dir, RESERVED_DIR, INSTALL_RECORD)).then(() => true, () => false)]);
  return hashes && { hashes, sources: sourcesOf(hashes, installed) };
}

/** `readReleaseSources` with synchronous calls (fs-atomic.ts `readJsonFileNow`), for what a push waits on. */
export function readReleaseSourcesNow(dir: string): { hashes: StoredFileHashes; sources: SourceManifest } | undefined {
  const hashes = readFileHashesNow(dir);
  return hashes && { hashes, sources: sourcesOf(hashes, existsSync(path.join(dir, RESERVED_DIR, INSTALL_RECORD))) };
}
