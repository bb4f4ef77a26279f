import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readlink, writeFile } from 'node:fs/promises';
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

/** Files hashed at once: each small file is a few awaited fs calls, and one at a time they queue behind each other. */
const HASH_CONCURRENCY = 8;
/** Files up to this size are read whole (one read); larger ones are streamed, so memory stays bounded. */
const WHOLE_READ_BYTES = 1024 * 1024;

/**
 * Walks the unpacked release: hashes every regular file and re-checks, on what is really on disk,
 * that every symlink stays inside the release (defence in depth after extract.ts's string checks,
 * and the only check that sees the tree after a top-level folder was stripped).
 *
 * Hashing runs HASH_CONCURRENCY files at a time (issue 6, measured by `npm run bench`): one file at a
 * time with a stream each, a 200-file release took 90-500 ms on a loaded 2-core machine, ~7× what
 * the same work takes concurrently, and it sits on every deploy's path.
 */
export async function hashTree(root: string): Promise<HashedTree> {
  const top = await readdir(root);
  if (top.includes(RESERVED_DIR)) throw new DeployError('DEPLOY_ERR_RESERVED_PATH');
  const rels: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const abs = path.join(dir, entry.name);
      const rel = path.relative(root, abs).split(path.sep).join('/');
      if (entry.isDirectory()) {
        await walk(abs);
      } else if (entry.isSymbolicLink()) {
        await assertLinkInside(root, abs, rel);
      } else if (entry.isFile()) {
        rels.push(rel);
      } else {
        throw new DeployError('DEPLOY_ERR_ENTRY_TYPE', rel);
      }
    }
  };
  await walk(root);
  const hashed = new Array<{ hash: string; size: number }>(rels.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rels.length) {
      const i = next++;
      hashed[i] = await hashFile(path.join(root, rels[i] as string));
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, rels.length) }, worker));
  const files: Record<string, string> = {};
  let bytes = 0;
  rels.forEach((rel, i) => {
    const { hash, size } = hashed[i] as { hash: string; size: number };
    files[rel] = hash;
    bytes += size;
  });
  return { manifest: { version: 1, algorithm: 'sha256', files }, files: rels.length, bytes };
}

/** sha256 and size of one regular file, through one open handle. */
async function hashFile(file: string): Promise<{ hash: string; size: number }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size <= WHOLE_READ_BYTES) {
      return { hash: createHash('sha256').update(await handle.readFile()).digest('hex'), size };
    }
    const hash = createHash('sha256');
    await pipeline(handle.createReadStream({ autoClose: false }), hash);
    return { hash: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
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
