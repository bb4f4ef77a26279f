import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DeployError } from './errors.js';

/** Where a release keeps hotdeploy's own files; bundles may not bring one (DEPLOY_ERR_RESERVED_PATH). */
export const RESERVED_DIR = '.hotdeploy';

/** `<release>/.hotdeploy/files.json`: the worker runtime diffs two of these to find changed modules. */
export interface FileHashManifest {
  version: 1;
  algorithm: 'sha256';
  files: Record<string, string>;
}

export interface HashedTree {
  manifest: FileHashManifest;
  files: number;
  bytes: number;
}

/**
 * Walks the unpacked release: hashes every regular file and re-checks, on what is really on disk,
 * that every symlink stays inside the release (defence in depth after extract.ts's string checks,
 * and the only check that sees the tree after a top-level folder was stripped). Files hashed while
 * they were unpacked (`known`) are not read again.
 */
export async function hashTree(root: string, known: ReadonlyMap<string, string> = new Map()): Promise<HashedTree> {
  const top = await readdir(root);
  if (top.includes(RESERVED_DIR)) throw new DeployError('DEPLOY_ERR_RESERVED_PATH');
  const files: Record<string, string> = {};
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const abs = path.join(dir, entry.name);
      const rel = path.relative(root, abs).split(path.sep).join('/');
      if (entry.isDirectory()) {
        await walk(abs);
      } else if (entry.isSymbolicLink()) {
        await assertLinkInside(root, abs, rel);
      } else if (entry.isFile()) {
        files[rel] = known.get(rel) ?? (await sha256File(abs));
        bytes += (await lstat(abs)).size;
      } else {
        throw new DeployError('DEPLOY_ERR_ENTRY_TYPE', rel);
      }
    }
  };
  await walk(root);
  return { manifest: { version: 1, algorithm: 'sha256', files }, files: Object.keys(files).length, bytes };
}

export async function writeFileHashes(root: string, manifest: FileHashManifest): Promise<void> {
  await mkdir(path.join(root, RESERVED_DIR), { recursive: true });
  await writeFile(path.join(root, RESERVED_DIR, 'files.json'), JSON.stringify(manifest) + '\n');
}

async function assertLinkInside(root: string, link: string, rel: string): Promise<void> {
  const target = await readlink(link);
  const resolved = path.resolve(path.dirname(link), target);
  if (path.isAbsolute(target) || (resolved !== root && !resolved.startsWith(root + path.sep))) {
    throw new DeployError('DEPLOY_ERR_LINK_ESCAPE', `${rel} -> ${target}`);
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}
