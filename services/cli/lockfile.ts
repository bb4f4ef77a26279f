import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Header as TarHeader } from 'tar';
import { fs } from './builtins.js';
import { CliError } from './errors.js';

/** The lockfiles `npm pack` always leaves out (package-lock.json; yarn's, pnpm's and bun's too). */
const LOCKFILES = ['package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lock', 'bun.lockb'];
/** npm pack's fixed mtime (1985-10-26T08:15:00Z): the same files give the same bytes. */
const NPM_PACK_MTIME = new Date(499162500000);
const BLOCK = 512;

/**
 * The lockfile to add to what `npm pack` packed from `dir`, so the service can install the
 * production dependencies (`npm ci`): none when the pack carries node_modules (bundleDependencies:
 * they are the app's), or npm-shrinkwrap.json (npm packs that one itself). A yarn, pnpm or bun
 * lockfile goes too when there is no npm one, so the service can say what it installs from. Never
 * `.npmrc`: it can hold registry tokens, and the service has its own (`serve --npmrc`).
 */
export function lockfileToAdd(dir: string, packed: readonly string[]): string | undefined {
  if (packed.some((p) => p.startsWith('node_modules/')) || packed.includes('npm-shrinkwrap.json')) return undefined;
  return LOCKFILES.find((name) => fs.existsSync(path.join(dir, name)));
}

/**
 * Adds `name` from `dir` to the .tgz `file` (rewritten in place), beside the package.json under
 * the tarball's top folder (`package/`): the tar stream is read to its end-of-archive blocks, the
 * file's header and bytes go there, then the end again. Bundles packed without node_modules are
 * small, so the whole tar is held in memory.
 */
export async function addToTarball(file: string, dir: string, name: string): Promise<void> {
  // Loaded here: only `--npm-pack` comes this way, and node-tar takes 70-140 ms to load.
  const { Header } = await import('tar');
  const tarBytes = gunzipSync(await readFile(file));
  const { end, folder } = archiveEnd(tarBytes, file, Header);
  const body = await readFile(path.join(dir, name));
  const header = new Header({ path: `${folder}${name}`, mode: 0o644, size: body.length, mtime: NPM_PACK_MTIME, type: 'File', uid: 0, gid: 0 });
  header.encode();
  const padding = Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK);
  const out = Buffer.concat([tarBytes.subarray(0, end), header.block as Buffer, body, padding, Buffer.alloc(2 * BLOCK)]);
  await writeFile(file, gzipSync(out));
}

/** Where the archive's entries end (its first zero block) and the folder its package.json is in (`package/`). */
function archiveEnd(tarBytes: Buffer, file: string, Header: typeof TarHeader): { end: number; folder: string } {
  let offset = 0;
  let folder: string | undefined;
  while (offset + BLOCK <= tarBytes.length) {
    const header = new Header(tarBytes.subarray(offset, offset + BLOCK));
    if (header.nullBlock) return { end: offset, folder: folder ?? '' };
    if (header.path && /^([^/]+\/)?package\.json$/.test(header.path)) folder ??= header.path.slice(0, -'package.json'.length);
    offset += BLOCK + Math.ceil((header.size ?? 0) / BLOCK) * BLOCK;
  }
  throw new CliError('CLI_ERR_PACK', `${file}: npm pack wrote a tarball without an end`);
}
