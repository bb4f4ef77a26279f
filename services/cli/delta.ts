import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, UploadBody } from './client.js';
import { segment } from './command.js';
import { CliError, ServerError } from './errors.js';
import { cacheFile, hashLocalFiles, writeAtomic, type LocalFile } from './local-files.js';
import { packList, type PackList } from './packlist.js';
import { gzipTar, type TarFile } from './tar-writer.js';
import { VERSION_PATTERN } from '../server/schemas.js';
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

/** The current release's files as the service reported them (`GET /v1/apps/:app/files`). */
export interface ServerFiles extends SourceManifest {
  version: string;
  manifestSha256: string;
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

/**
 * The app's current release's files, or undefined when it has none (or the server has no such
 * endpoint). The last answer is kept (ETag): unchanged, the server answers 304 with no body.
 */
export async function currentFiles(client: Client, app: string, env: NodeJS.ProcessEnv): Promise<ServerFiles | undefined> {
  const file = serverFilesCache(client, app, env);
  // Read at once (a small file): the request leaves in the same turn as the call, ahead of the local work.
  const cached = readCached(file);
  try {
    const res = await client.request<unknown>('GET', `/v1/apps/${segment(app)}/files`, {
      headers: cached ? { 'if-none-match': `"${cached.manifestSha256}"` } : {},
    });
    const answer = res.statusCode === 304 && cached
      ? serverFiles({ ...cached, version: res.headers['x-hotdeploy-release'] ?? cached.version })
      : serverFiles(res.body);
    if (!answer) throw new CliError('CLI_ERR_BAD_RESPONSE', `GET /v1/apps/${app}/files answered no file list of a release`);
    if (res.statusCode !== 304) await writeAtomic(file, JSON.stringify(answer));
    return answer;
  } catch (err) {
    // No current release, a server without deltas, or a token that may not read: a full bundle goes.
    if (err instanceof ServerError && (err.statusCode === 404 || err.statusCode === 403)) return undefined;
    throw err;
  }
}

function readCached(file: string): ServerFiles | undefined {
  try {
    return serverFiles(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * `value` when it is a file list the push can use: the version and digest it sends back in headers
 * (and keeps for the next push's If-None-Match) well formed, the files and links of the right types.
 */
function serverFiles(value: unknown): ServerFiles | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, manifestSha256, files, links } = value as Record<string, unknown>;
  if (typeof version !== 'string' || !new RegExp(VERSION_PATTERN).test(version)) return undefined;
  if (typeof manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(manifestSha256)) return undefined;
  if (typeof files !== 'object' || files === null || Array.isArray(files) || !Object.values(files).every((h) => typeof h === 'string')) return undefined;
  if (!Array.isArray(links) || !links.every((l) => typeof l === 'string')) return undefined;
  return { version, manifestSha256, files: files as Record<string, string>, links: links as string[] };
}

/** What the server now has as current, remembered so the next push's manifest exchange is a 304. */
export async function rememberCurrent(client: Client, app: string, version: string, local: LocalRelease, env: NodeJS.ProcessEnv): Promise<void> {
  const files: ServerFiles = { version, manifestSha256: local.digest, ...local.manifest };
  await writeAtomic(serverFilesCache(client, app, env), JSON.stringify(files));
}

function serverFilesCache(client: Client, app: string, env: NodeJS.ProcessEnv): string {
  return cacheFile(env, 'releases', `${client.server.href} ${app}`);
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
  return { path: at, mode: mode & 0o111 ? 0o755 : 0o644, body: readFileSync(path.join(local.dir, rel)) };
}

function uploadOf(bytes: Buffer): UploadBody {
  return { bytes, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
