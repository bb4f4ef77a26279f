import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { SourceManifest } from './source-manifest.js';

/** A release's files as one .tgz, on disk: for downloads and for hosts without the delta's base. */
export interface FullBundle {
  file: string;
  sha256: string;
  bytes: number;
}

/** npm pack's fixed mtime: the same files make the same bytes. */
const FIXED_MTIME = new Date(499162500000);

/**
 * Makes `file` (unless it was made before) from a release folder's own files, laid out as `npm pack` lays
 * them out (`package/`), so it unpacks exactly as a full bundle of the same files would. Written
 * under `tmpDir` and renamed: a reader never sees half of it.
 */
export async function ensureFullBundle(releaseDir: string, sources: SourceManifest, file: string, tmpDir: string): Promise<FullBundle> {
  const known = await builtFullBundle(file);
  if (known) return known;
  await mkdir(tmpDir, { recursive: true });
  const scratch = await mkdtemp(path.join(tmpDir, 'full-bundle-'));
  try {
    const built = path.join(scratch, 'bundle.tgz');
    const entries = [...Object.keys(sources.files), ...sources.links].sort();
    await tar.c({ gzip: true, file: built, cwd: releaseDir, prefix: 'package', portable: true, mtime: FIXED_MTIME, noDirRecurse: true }, entries);
    const hash = createHash('sha256');
    await pipeline(createReadStream(built), hash);
    const sha256 = hash.digest('hex');
    await mkdir(path.dirname(file), { recursive: true });
    // Its sha256 first, then the bundle: a bundle on disk always has its sha256 beside it.
    await writeFile(path.join(scratch, 'sha256'), sha256);
    await rename(path.join(scratch, 'sha256'), shaFile(file));
    await rename(built, file);
    return { file, sha256, bytes: (await stat(file)).size };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A full bundle already made (its sha256 kept beside it), or undefined. */
export async function builtFullBundle(file: string): Promise<FullBundle | undefined> {
  const [info, sha256] = await Promise.all([stat(file).catch(() => undefined), readFile(shaFile(file), 'utf8').catch(() => undefined)]);
  return info && sha256 ? { file, sha256: sha256.trim(), bytes: info.size } : undefined;
}

/** Where a made bundle's sha256 is kept. */
export function shaFile(file: string): string {
  return `${file}.sha256`;
}
