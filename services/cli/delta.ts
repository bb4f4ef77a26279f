import { createHash } from 'node:crypto';
import path from 'node:path';
import { fs } from './builtins.js';
import type { UploadBody } from './client.js';
import { hashLocalFiles, type LocalFile } from './local-files.js';
import { packList, type PackList } from './packlist.js';
import { gzipTar, type TarFile } from './tar-writer.js';
import { manifestDigest, type SourceManifest } from '../server/source-manifest.js';

/** A directory as it would be pushed: its packed files, hashed, and the digest of their manifest. */
export interface LocalRelease {
  dir: string;
  list: PackList;
  files: Map<string, LocalFile>;
  manifest: SourceManifest;
  digest: string;
  /** Files read (not known from the cache) to hash them. */
  read: number;
  /** Stores what was hashed for the next push (off the push's path: called once the upload is answered). */
  saveCache(): Promise<void>;
}

/** Packs `dir`'s file list in-process and hashes the files (the cache spares reading unchanged ones). */
export async function readLocalRelease(dir: string, env: NodeJS.ProcessEnv): Promise<LocalRelease> {
  const list = await packList(dir, env);
  const hashed = await hashLocalFiles(dir, list.files, env);
  const files: Record<string, string> = {};
  for (const rel of list.files) files[rel] = (hashed.files.get(rel) as LocalFile).sha256;
  const manifest: SourceManifest = { files, links: [] };
  return { dir, list, files: hashed.files, manifest, digest: manifestDigest(manifest), read: hashed.read, saveCache: hashed.save };
}

/** The delta from `base` to `local`: changed and added files (bytes included), removed paths. */
export function makeDelta(local: LocalRelease, base: SourceManifest): { body: UploadBody; changed: string[]; removed: string[] } {
  const changed = local.list.files.filter((rel) => base.files[rel] !== local.manifest.files[rel]);
  const removed = [...Object.keys(base.files), ...base.links].filter((rel) => !Object.hasOwn(local.manifest.files, rel)).sort();
  const entries = changed.map((rel) => tarFile(local, rel, rel));
  // Always there, `[]` when nothing is removed: a delta that changes nothing is still a tar archive with an entry.
  entries.push({ path: '.hotdeploy/removed.json', mode: 0o644, body: Buffer.from(JSON.stringify(removed)) });
  return { body: uploadOf(gzipTar(entries)), changed, removed };
}

/** Every packed file under `package/`, as `npm pack` lays a bundle out. */
export function fullBundle(local: LocalRelease): UploadBody {
  return uploadOf(gzipTar(local.list.files.map((rel) => tarFile(local, rel, `package/${rel}`))));
}

/** The file's bytes as hashed: a file that changed since would make the service refuse the digest. */
function tarFile(local: LocalRelease, rel: string, at: string): TarFile {
  const { mode } = local.files.get(rel) as LocalFile;
  return { path: at, mode: mode & 0o111 ? 0o755 : 0o644, body: fs.readFileSync(path.join(local.dir, rel)) };
}

function uploadOf(bytes: Buffer): UploadBody {
  return { bytes, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
