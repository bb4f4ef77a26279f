import { readFileSync } from 'node:fs';
import path from 'node:path';
import { linksOf, type FileIndex } from './file-index.js';

/** Written by the deploy service beside `files.json` (services/server/file-hashes.ts, ReleaseChanges). */
export const CHANGES_FILE = '.hotdeploy/changes.json';

/** `to`'s file index rebuilt from the current one, and the only paths where the two may differ. */
export interface IndexDelta {
  index: FileIndex;
  paths: string[];
}

/**
 * The new release's file index from the current one and the new release's `changes.json`, when that
 * file describes the change from exactly `from`: `from` was read from (or rebuilt as) a `files.json`
 * whose bytes hash to the `base.files` it names, and `base.version` is `from`'s folder beside `to`
 * (both realpaths, so the same folder). Reading it costs the change, not the app's file count: an
 * app shipping node_modules has a files.json of hundreds of KB. `links` is the new release's whole
 * list (as in its files.json, and absent when that has none). Anything short of an exact match —
 * another base, another shape, a path both changed and removed, a removed path `from` lacks — and
 * the caller reads `files.json` as before: a partial match is never trusted.
 */
export function indexFromChanges(from: FileIndex, to: string): IndexDelta | undefined {
  if (from.manifestSha256 === undefined || path.dirname(from.dir) !== path.dirname(to)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path.join(to, CHANGES_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const c = parsed as { version?: unknown; base?: { version?: unknown; files?: unknown } | null; files?: unknown; changed?: unknown; removed?: unknown; links?: unknown };
  if (c?.version !== 1 || typeof c.base !== 'object' || c.base === null) return undefined;
  if (c.base.version !== path.basename(from.dir) || c.base.files !== from.manifestSha256 || typeof c.files !== 'string') return undefined;
  const { changed, removed } = c;
  if (typeof changed !== 'object' || changed === null || Array.isArray(changed) || !Array.isArray(removed)) return undefined;
  const links = c.links === undefined ? undefined : linksOf(c.links);
  if (c.links !== undefined && links === undefined) return undefined;
  const files = new Map(from.files);
  const paths: string[] = [];
  for (const rel in changed) {
    const hash = (changed as Record<string, unknown>)[rel];
    if (typeof hash !== 'string') return undefined;
    files.set(rel, hash);
    paths.push(rel);
  }
  for (const rel of removed as unknown[]) {
    if (typeof rel !== 'string' || Object.hasOwn(changed, rel) || !files.delete(rel)) return undefined;
    paths.push(rel);
  }
  return { index: { dir: to, fromManifest: true, files, links, manifestSha256: c.files }, paths };
}
