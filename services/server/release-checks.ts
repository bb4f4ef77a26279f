import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '../../agent/manifest.js';
import { NO_PORT_HINT, portSource, type HostPortSources } from '../../agent/port-source.js';
import type { AppManifest } from '../../agent/messages.js';
import { DeployError, type DeployErrorCode } from './errors.js';
import type { ExtractResult } from './unpack/extract.js';
import { encodeFileHashes, FILES_FILE, releaseChanges, RESERVED_DIR, writeReleaseChanges, type StoredFileHashes } from './file-hashes.js';
import { writeInstallRecord, type Installer, type InstallRecord, type InstallSource } from './install/dependencies.js';
import { hashFiles, withTree, type TreeIndex } from './install/tree.js';
import { manifestDigest } from './source-manifest.js';
import type { ReleaseMeta, ReleaseStore } from './release-store.js';

/** An unpacked, checked bundle under a staging directory. */
export interface Unpacked {
  root: string;
  files: number;
  bytes: number;
  manifestSha256: string;
  manifest: AppManifest;
  install?: InstallRecord;
  /** The installed node_modules' file index. */
  tree?: TreeIndex;
}

/** The app's current release at ingest, as the unpacker links from it and `changes.json` names it. */
export interface BaseRelease {
  version: string;
  dir: string;
  hashes: StoredFileHashes;
  install: InstallRecord | undefined;
}

/** What the checks read: the stored releases, the installer that provides dependencies, the hosts' port sources. */
export interface CheckContext {
  store: ReleaseStore;
  installer: Installer;
  ports: HostPortSources;
}

const HOT_TO_DEPLOY: Record<string, DeployErrorCode> = {
  HOT_ERR_MANIFEST: 'DEPLOY_ERR_MANIFEST',
  HOT_ERR_SETTINGS: 'DEPLOY_ERR_SETTINGS',
  HOT_ERR_ENTRY: 'DEPLOY_ERR_ENTRY',
};

/**
 * The unpacked tree's manifest, its dependencies (installed, or linked from a release with the
 * same install key), then the file-hash manifest the workers diff (node_modules included), and
 * with a base release what changed since it (the hashes the unpacker linked from, not read again).
 * `release`: the tree becomes a release (a dry run's does not: it never takes the app's spare).
 * `version`: a stored version being uploaded again, refused (409) before any install when its files differ.
 */
export async function checked(ctx: CheckContext, app: string, release: boolean, extracted: ExtractResult, base?: BaseRelease,
  version?: string): Promise<Unpacked> {
  const manifestSha256 = manifestDigest({ files: extracted.manifest.files, links: extracted.manifest.links ?? [] });
  const stored = version === undefined ? undefined : await ctx.store.get(app, version);
  if (stored) sameRelease(stored, { manifestSha256 });
  const manifest = await readManifest(extracted.root).catch((err: unknown) => {
    const code = HOT_TO_DEPLOY[(err as { code?: string }).code ?? ''];
    throw code ? new DeployError(code, (err as Error).message, { cause: err }) : err;
  });
  if (portSource(manifest, ctx.ports) === undefined) throw new DeployError('DEPLOY_ERR_NO_PORT', NO_PORT_HINT);
  const deps = await ctx.installer.provide(extracted.root, () => installSources(ctx.store, app, base), release ? app : undefined);
  // Install scripts may rewrite the bundle's own files: the index says what is on disk, so a later
  // upload never links a rewritten copy in place of the bytes it sent (nor a worker misses the change).
  const sources = deps?.record.scripts && deps.record.how === 'npm ci'
    ? { ...extracted.manifest, files: await hashFiles(extracted.root, Object.keys(extracted.manifest.files)) }
    : extracted.manifest;
  const index = encodeFileHashes(deps ? withTree(sources, deps.tree) : sources);
  const reserved = path.join(extracted.root, RESERVED_DIR);
  await mkdir(reserved, { recursive: true });
  // Three files of their own, written at once: `changes.json` needs the index's bytes, not its file.
  await Promise.all([
    writeFile(path.join(reserved, FILES_FILE), index.bytes),
    deps ? writeInstallRecord(extracted.root, deps.record) : undefined,
    base ? writeReleaseChanges(extracted.root, releaseChanges(base.version, base.hashes, index.stored)) : undefined,
  ]);
  return { root: extracted.root, files: extracted.files, bytes: extracted.bytes, manifestSha256, manifest, ...(deps ? { install: deps.record, tree: deps.tree } : {}) };
}

/** Releases that may lend their node_modules: the current one first (its index is already read), then the newest. */
async function installSources(store: ReleaseStore, app: string, base: BaseRelease | undefined): Promise<InstallSource[]> {
  const stored = (await store.list(app)).filter((m) => m.install && m.version !== base?.version)
    .map((m) => ({ version: m.version, dir: store.releaseDir(app, m.version), install: m.install }));
  return base ? [{ version: base.version, dir: base.dir, install: base.install, hashes: base.hashes }, ...stored] : stored;
}

/**
 * `stored` when it is the same release: the same uploaded bytes, or the same files (the manifest
 * digest, however they arrived); 409 otherwise.
 */
export function sameRelease(stored: ReleaseMeta, id: { sha256?: string; manifestSha256: string }): ReleaseMeta {
  if (stored.sha256 === id.sha256 || stored.manifestSha256 === id.manifestSha256) return stored;
  throw new DeployError('DEPLOY_ERR_VERSION_CONFLICT',
    `${stored.app}@${stored.version} holds files with digest ${(stored.manifestSha256 ?? stored.sha256).slice(0, 12)}, these have ${id.manifestSha256.slice(0, 12)}; push them as a new version`);
}
