import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create } from 'tar';
import { NODE_MODULES } from './tree.js';

/** The archive of one installed node_modules on the service: its file and sha256. */
export interface NodeModulesArchive {
  file: string;
  sha256: string;
}

/** Where an app's archives of its installs live: `<appDir>/installs/<key>.tgz`, and `<key>.json` with the sha256. */
export function archivePaths(appDir: string, key: string): { file: string; info: string } {
  const dir = path.join(appDir, 'installs');
  return { file: path.join(dir, `${key}.tgz`), info: path.join(dir, `${key}.json`) };
}

/**
 * The installed node_modules of `releaseDir` (install `key`) as one .tgz (`node_modules/` its only
 * top folder, fixed mtimes, no owners), for hosts behind NATS: they take it from the object store
 * instead of installing, and need no registry. Made once per install key, then read back.
 */
export async function nodeModulesArchive(appDir: string, releaseDir: string, key: string): Promise<NodeModulesArchive> {
  const { file, info } = archivePaths(appDir, key);
  const known = await readFile(info, 'utf8').then((t) => JSON.parse(t) as { sha256?: unknown }, () => undefined);
  if (typeof known?.sha256 === 'string' && (await readFile(file).then(() => true, () => false))) return { file, sha256: known.sha256 };
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await create({ gzip: true, portable: true, mtime: new Date(0), cwd: releaseDir, file: tmp }, [NODE_MODULES]);
    const hash = createHash('sha256');
    await pipeline(createReadStream(tmp), hash);
    const sha256 = hash.digest('hex');
    await rename(tmp, file);
    await writeFile(info, JSON.stringify({ sha256 }) + '\n');
    return { file, sha256 };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Removes the archive of an install no kept release uses any more. */
export async function removeArchive(appDir: string, key: string): Promise<void> {
  const { file, info } = archivePaths(appDir, key);
  await rm(info, { force: true });
  await rm(file, { force: true });
}
