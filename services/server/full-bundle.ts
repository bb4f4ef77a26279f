import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
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
 * Makes `file` (unless it exists) from a release folder's own files, laid out as `npm pack` lays
 * them out (`package/`), so it unpacks exactly as a full bundle of the same files would. Written
 * under `tmpDir` and renamed: a reader never sees half of it.
 */
export async function ensureFullBundle(releaseDir: string, sources: SourceManifest, file: string, tmpDir: string): Promise<FullBundle> {
  if (!(await stat(file).then(() => true, () => false))) {
    await mkdir(tmpDir, { recursive: true });
    const scratch = await mkdtemp(path.join(tmpDir, 'full-bundle-'));
    try {
      const built = path.join(scratch, 'bundle.tgz');
      const entries = [...Object.keys(sources.files), ...sources.links].sort();
      await tar.c({ gzip: true, file: built, cwd: releaseDir, prefix: 'package', portable: true, mtime: FIXED_MTIME, noDirRecurse: true }, entries);
      await mkdir(path.dirname(file), { recursive: true });
      await rename(built, file);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return { file, sha256: hash.digest('hex'), bytes: (await stat(file)).size };
}
