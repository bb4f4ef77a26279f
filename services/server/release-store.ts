import { mkdir, mkdtemp, readdir, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { readManifest } from '../../agent/manifest.js';
import { NO_PORT_HINT, portSource, type HostPortSources } from '../../agent/port-source.js';
import type { AppManifest } from '../../agent/messages.js';
import { DeployError, isDeployError, type DeployErrorCode } from './errors.js';
import { Extraction, extractBundle, type ExtractResult } from './unpack/extract.js';
import { readFileHashes, releaseChanges, writeFileHashes, writeReleaseChanges, type StoredFileHashes } from './file-hashes.js';
import { Installer, writeInstallRecord, type InstallerOptions, type InstallRecord, type InstallSource } from './install/dependencies.js';
import { removeArchive } from './install/node-modules-archive.js';
import { hashFiles, withoutTree, withTree, type TreeIndex } from './install/tree.js';
import { isErrno, readJsonFile, readJsonFileNow, swapSymlink, writeJsonAtomic } from './fs-atomic.js';
import { KeyedQueue } from '../../agent/common/serial-queue.js';
import type { Limits } from './options.js';
import { assembleDelta } from './unpack/delta.js';
import { builtFullBundle, ensureFullBundle, shaFile, type FullBundle } from './full-bundle.js';
import { manifestDigest, readReleaseSources } from './source-manifest.js';
import { UploadAdmission } from './unpack/admission.js';
import { BundleFile, receiveBundle, type BundleKeeper, type ReceivedBundle } from './unpack/upload.js';

/** `<dataDir>/apps/<app>/meta/<version>.json`: a release exists exactly when this file does. */
export interface ReleaseMeta {
  app: string;
  version: string;
  /** sha256 of the uploaded .tgz: the full bundle, or with `delta` the delta. */
  sha256: string;
  /** Size of the uploaded .tgz. */
  bundleBytes: number;
  /**
   * The digest of the release's own files (source-manifest.ts): its identity for idempotence and
   * the 409 check, whether it came as a full bundle or as a delta. Absent in releases stored before it was kept.
   */
  manifestSha256?: string;
  /** Set when the release was built from a delta against `base` (its full .tgz is made on demand). */
  delta?: { base: string };
  /** Regular files and their unpacked bytes. */
  files: number;
  bytes: number;
  createdAt: string;
  /** The token's name. */
  createdBy: string;
  /** Set when a deployment of it was rolled back (a host agent found it does not come up). */
  bad: boolean;
  badReason?: string;
  /**
   * Whether a deployment of it ever succeeded (it served). Rollback only goes to releases that did.
   * Absent in releases stored before this was recorded: those count as having gone live.
   */
  live?: boolean;
  liveAt?: string;
  manifest: AppManifest;
  /** How its node_modules were installed on the host; absent when the bundle brought its own or needs none. */
  install?: InstallRecord;
}

/** `<dataDir>/apps/<app>/pointers.json`, switched atomically (write temp + rename). */
export interface Pointers {
  current: string | null;
  previous: string | null;
  updatedAt: string | null;
}

export interface IngestResult {
  release: ReleaseMeta;
  /** false: the same version with the same bytes was already stored (idempotent upload). */
  created: boolean;
}

/** A bundle unpacked and checked for a dry run; its directory is gone once `stage`'s callback ends. */
export interface StagedBundle {
  /** The app's root inside the staging directory (absolute). */
  root: string;
  /** The received .tgz (under the same staging directory). */
  file: string;
  manifest: AppManifest;
  sha256: string;
  bundleBytes: number;
  files: number;
  bytes: number;
}

/** An unpacked, checked bundle under a staging directory. */
interface Unpacked {
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
interface BaseRelease {
  version: string;
  dir: string;
  hashes: StoredFileHashes;
  install: InstallRecord | undefined;
}

/** What the store adds to a bundle's own settings: the hosts' port sources, and how it installs dependencies. */
export interface StoreSettings {
  ports?: HostPortSources;
  install?: Omit<InstallerOptions, 'dataDir'>;
}

const HOT_TO_DEPLOY: Record<string, DeployErrorCode> = {
  HOT_ERR_MANIFEST: 'DEPLOY_ERR_MANIFEST',
  HOT_ERR_SETTINGS: 'DEPLOY_ERR_SETTINGS',
  HOT_ERR_ENTRY: 'DEPLOY_ERR_ENTRY',
};

/**
 * The data directory's releases. A release is unpacked into `<dataDir>/tmp/` (same filesystem),
 * checked (limits, links, manifest), hashed, and only then renamed into `releases/<version>/`,
 * followed by its metadata file; so nothing half-unpacked is ever visible.
 */
export class ReleaseStore {
  readonly appsDir: string;
  readonly tmpDir: string;
  private readonly lock = new KeyedQueue();
  private readonly installer: Installer;
  private readonly ports: HostPortSources;
  /** Deletions of pruned release folders still running (`discard`). */
  private readonly discards = new Set<Promise<void>>();
  private readonly admission: UploadAdmission;

  constructor(readonly dataDir: string, private readonly limits: Limits, settings: StoreSettings = {}) {
    this.admission = new UploadAdmission({ maxUploads: limits.maxUploads, maxQueuedUploads: limits.maxQueuedUploads, maxWaitMs: limits.uploadIdleTimeoutMs });
    this.appsDir = path.join(dataDir, 'apps');
    this.tmpDir = path.join(dataDir, 'tmp');
    this.ports = settings.ports ?? {};
    this.installer = new Installer({ dataDir, ...settings.install });
  }

  appDir(app: string): string {
    return path.join(this.appsDir, app);
  }

  releaseDir(app: string, version: string): string {
    return path.join(this.appDir(app), 'releases', version);
  }

  bundleFile(app: string, sha256: string): string {
    return path.join(this.appDir(app), 'bundles', `${sha256}.tgz`);
  }

  /** A delta-made release's full .tgz, made on demand (full-bundle.ts), one per set of files. */
  fullBundleFile(meta: Pick<ReleaseMeta, 'app' | 'manifestSha256'>): string {
    return path.join(this.appDir(meta.app), 'bundles', `full-${meta.manifestSha256}.tgz`);
  }

  /** The release as one full .tgz: the uploaded bundle, or for a delta-made release one made from its folder. */
  async fullBundle(app: string, version: string): Promise<FullBundle> {
    const meta = await this.require(app, version);
    if (!meta.delta) return { file: this.bundleFile(app, meta.sha256), sha256: meta.sha256, bytes: meta.bundleBytes };
    const dir = this.releaseDir(app, version);
    const read = await readReleaseSources(dir);
    if (!read) throw new DeployError('DEPLOY_ERR_STORAGE', `${app}@${version} has no readable file manifest`);
    return ensureFullBundle(dir, read.sources, this.fullBundleFile(meta), this.tmpDir);
  }

  /** The full bundle of a release as far as it exists on disk (never made here): what the object store may hold of it. */
  async storedFullBundle(meta: ReleaseMeta): Promise<FullBundle | undefined> {
    if (!meta.delta) return { file: this.bundleFile(meta.app, meta.sha256), sha256: meta.sha256, bytes: meta.bundleBytes };
    return builtFullBundle(this.fullBundleFile(meta));
  }

  /** What was uploaded for the release: its full bundle, or the delta it was built from. */
  uploadFile(meta: Pick<ReleaseMeta, 'app' | 'sha256' | 'delta'>): string {
    return meta.delta ? path.join(this.appDir(meta.app), 'deltas', `${meta.sha256}.tgz`) : this.bundleFile(meta.app, meta.sha256);
  }

  metaFile(app: string, version: string): string {
    return path.join(this.appDir(app), 'meta', `${version}.json`);
  }

  /** Serialises changes to one app's metadata and pointers. */
  withAppLock<T>(app: string, job: () => Promise<T>): Promise<T> {
    return this.lock.run(app, job);
  }

  /** Receives, checks and stores one upload; throws a DeployError and leaves nothing behind on failure. */
  async ingest(app: string, version: string, body: Readable, opts: { expectedSha256?: string; by: string }): Promise<IngestResult> {
    return this.admitted(body, () => this.withStaging(`${app}-${version}-`, async (staging) => {
      let unpacked: Unpacked;
      let received: ReceivedBundle & { file: string };
      const stored = await this.get(app, version);
      if (stored) {
        // A re-upload of a stored version is only received: the same bytes answer with the release;
        // other bytes are unpacked, and answer with it when they hold the same files (409 otherwise).
        received = await this.receive(staging, body, opts.expectedSha256);
        if (stored.sha256 === received.sha256) return { release: stored, created: false };
        unpacked = await this.checked(app, true, await extractBundle(received.file, path.join(staging, 'raw'), this.limits), undefined, version);
      } else {
        ({ received, unpacked } = await this.receiveUnpacking(app, staging, body, opts.expectedSha256, true));
      }
      return this.store(app, version, received, unpacked, opts.by);
    }));
  }

  /**
   * Receives a delta against `base` (delta.ts: the changed files, the removed paths) and stores the
   * whole release it makes, checked against `manifestSha256`, the digest the client declares for it.
   * `base` must be the app's current release; the same version with the same files is idempotent.
   */
  async ingestDelta(app: string, version: string, body: Readable,
    opts: { base: string; manifestSha256: string; expectedSha256?: string; by: string }): Promise<IngestResult> {
    return this.admitted(body, () => this.withStaging(`${app}-${version}-`, async (staging) => {
      const stored = await this.get(app, version);
      if (stored) {
        // A retried delta whose answer was lost: its base may no longer be current, its files are known.
        await this.receive(staging, body, opts.expectedSha256);
        const known = this.sameRelease(stored, { manifestSha256: opts.manifestSha256 });
        return { release: known, created: false };
      }
      const baseMeta = await this.get(app, opts.base);
      const baseDir = this.releaseDir(app, opts.base);
      const base = baseMeta && await readReleaseSources(baseDir);
      if (!baseMeta || !base) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_FOUND', `${app}@${opts.base}`);
      const { current } = await this.pointers(app);
      if (current !== opts.base) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', `${app}'s current release is ${current ?? 'none'}`);
      const extraction = new Extraction(path.join(staging, 'raw'), this.limits, { keep: stagedBundle(staging), delta: true });
      const received = await this.receive(staging, body, opts.expectedSha256, extraction).catch(async (err: unknown) => {
        await extraction.abandon(isDeployError(err) ? err : new DeployError('DEPLOY_ERR_UPLOAD_ABORTED'));
        throw err;
      });
      const assembled = await assembleDelta(await extraction.result, { dir: baseDir, sources: base.sources, bytes: baseMeta.bytes }, opts.manifestSha256, this.limits)
        .catch(async (err: unknown) => {
          // Retention removed the base while the delta arrived (two pushes meanwhile): it is no longer current.
          if (isErrno(err, 'ENOENT') && !(await this.get(app, opts.base))) {
            throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', `${app}@${opts.base} was pruned while the delta arrived`);
          }
          throw err;
        });
      const unpacked = await this.checked(app, true, assembled, { version: opts.base, dir: baseDir, hashes: base.hashes, install: baseMeta.install });
      return this.store(app, version, received, unpacked, opts.by, { base: opts.base });
    }));
  }

  /** Records a checked release: committed under the app's lock, its installed node_modules offered as a spare's source. */
  private async store(app: string, version: string, received: ReceivedBundle & { file: string }, unpacked: Unpacked, by: string,
    delta?: ReleaseMeta['delta']): Promise<IngestResult> {
    const meta: ReleaseMeta = {
      app, version, sha256: received.sha256, bundleBytes: received.bytes, manifestSha256: unpacked.manifestSha256,
      ...(delta ? { delta } : {}), files: unpacked.files, bytes: unpacked.bytes,
      createdAt: monotonicNow(), createdBy: by, bad: false, live: false, manifest: unpacked.manifest,
      ...(unpacked.install ? { install: unpacked.install } : {}),
    };
    const result = await this.withAppLock(app, () => this.commit(meta, received.file, unpacked.root));
    if (result.created && unpacked.install && unpacked.tree) {
      this.installer.stored(app, { version, dir: this.releaseDir(app, version) }, unpacked.install, unpacked.tree);
    }
    return result;
  }

  /**
   * A dry run's copy of a bundle (`hotdeploy plan`): received, unpacked and checked exactly as an
   * upload, but under `tmp/` only, never a release; `use` sees it, then it is removed whatever happens.
   */
  async stage<T>(app: string, body: Readable, opts: { expectedSha256?: string }, use: (staged: StagedBundle) => Promise<T>): Promise<T> {
    return this.admitted(body, () => this.withStaging(`${app}-plan-`, async (staging) => {
      const { received, unpacked } = await this.receiveUnpacking(app, staging, body, opts.expectedSha256, false);
      const { root, manifest, files, bytes } = unpacked;
      return use({ root, file: received.file, manifest, sha256: received.sha256, bundleBytes: received.bytes, files, bytes });
    }));
  }

  /** `job` once the upload is admitted (unpack/admission.ts); its place is given up when the job ends. */
  private async admitted<T>(body: Readable, job: () => Promise<T>): Promise<T> {
    const leave = await this.admission.enter(body);
    try {
      return await job();
    } finally {
      leave();
    }
  }

  /** A fresh staging directory under `tmp/` (same filesystem, so the commit is a rename), always removed. */
  private async withStaging<T>(prefix: string, job: (staging: string) => Promise<T>): Promise<T> {
    await mkdir(this.tmpDir, { recursive: true });
    const staging = await mkdtemp(path.join(this.tmpDir, prefix));
    try {
      return await job(staging);
    } catch (err) {
      throw asStorageError(err);
    } finally {
      await rm(staging, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** The upload into `staging`'s bundle file, by `keeper` (an unpacker that also keeps it) or by a plain BundleFile. */
  private async receive(staging: string, body: Readable, expectedSha256: string | undefined, keeper?: BundleKeeper): Promise<ReceivedBundle & { file: string }> {
    const file = stagedBundle(staging);
    const received = await receiveBundle(body, keeper ?? new BundleFile(file), {
      maxBytes: this.limits.maxBundleBytes,
      idleTimeoutMs: this.limits.uploadIdleTimeoutMs,
      expectedSha256,
    });
    return { ...received, file };
  }

  /**
   * Receives the upload and unpacks it at the same time (the unpacker reads the bytes as they
   * arrive). The upload's own refusals (size, timeout, abort, sha256) come first; the archive's
   * only once the whole upload is in. Either way the unpacker has stopped writing when this throws.
   */
  private async receiveUnpacking(app: string, staging: string, body: Readable, expectedSha256: string | undefined, release: boolean):
    Promise<{ received: ReceivedBundle & { file: string }; unpacked: Unpacked }> {
    const base = await this.baseRelease(app);
    // Installed node_modules are never in a bundle that needs them installed: the unpacker is not sent their thousands of paths.
    const linkFrom = base && { linkFrom: { dir: base.dir, files: base.install ? withoutTree(base.hashes.files) : base.hashes.files } };
    const extraction = new Extraction(path.join(staging, 'raw'), this.limits, { keep: stagedBundle(staging), ...linkFrom });
    let received: ReceivedBundle & { file: string };
    try {
      received = await this.receive(staging, body, expectedSha256, extraction);
    } catch (err) {
      await extraction.abandon(isDeployError(err) ? err : new DeployError('DEPLOY_ERR_UPLOAD_ABORTED'));
      throw err;
    }
    return { received, unpacked: await this.checked(app, release, await extraction.result, base) };
  }

  /**
   * The current release's folder and file hashes, so unchanged files are linked, not written, and
   * `changes.json` can say what differs from it; none when there is no current release or its
   * `files.json` cannot be read (everything is written, and workers read the whole `files.json`).
   */
  private async baseRelease(app: string): Promise<BaseRelease | undefined> {
    const { current } = await this.pointers(app).catch(() => ({ current: null }));
    if (current === null) return undefined;
    const dir = this.releaseDir(app, current);
    const [hashes, meta] = await Promise.all([readFileHashes(dir), this.get(app, current)]);
    return hashes && { version: current, dir, hashes, install: meta?.install };
  }

  /**
   * The unpacked tree's manifest, its dependencies (installed, or linked from a release with the
   * same install key), then the file-hash manifest the workers diff (node_modules included), and
   * with a base release what changed since it (the hashes the unpacker linked from, not read again).
   * `release`: the tree becomes a release (a dry run's does not: it never takes the app's spare).
   * `version`: a stored version being uploaded again, refused (409) before any install when its files differ.
   */
  private async checked(app: string, release: boolean, extracted: ExtractResult, base?: BaseRelease, version?: string): Promise<Unpacked> {
    const manifestSha256 = manifestDigest({ files: extracted.manifest.files, links: extracted.manifest.links ?? [] });
    const stored = version === undefined ? undefined : await this.get(app, version);
    if (stored) this.sameRelease(stored, { manifestSha256 });
    const manifest = await readManifest(extracted.root).catch((err: unknown) => {
      const code = HOT_TO_DEPLOY[(err as { code?: string }).code ?? ''];
      throw code ? new DeployError(code, (err as Error).message, { cause: err }) : err;
    });
    if (portSource(manifest, this.ports) === undefined) throw new DeployError('DEPLOY_ERR_NO_PORT', NO_PORT_HINT);
    const deps = await this.installer.provide(extracted.root, () => this.installSources(app, base), release ? app : undefined);
    // Install scripts may rewrite the bundle's own files: the index says what is on disk, so a later
    // upload never links a rewritten copy in place of the bytes it sent (nor a worker misses the change).
    const sources = deps?.record.scripts && deps.record.how === 'npm ci'
      ? { ...extracted.manifest, files: await hashFiles(extracted.root, Object.keys(extracted.manifest.files)) }
      : extracted.manifest;
    const hashes = await writeFileHashes(extracted.root, deps ? withTree(sources, deps.tree) : sources);
    if (deps) await writeInstallRecord(extracted.root, deps.record);
    if (base) await writeReleaseChanges(extracted.root, releaseChanges(base.version, base.hashes, hashes));
    return { root: extracted.root, files: extracted.files, bytes: extracted.bytes, manifestSha256, manifest, ...(deps ? { install: deps.record, tree: deps.tree } : {}) };
  }

  /** Releases that may lend their node_modules: the current one first (its index is already read), then the newest. */
  private async installSources(app: string, base: BaseRelease | undefined): Promise<InstallSource[]> {
    const stored = (await this.list(app)).filter((m) => m.install && m.version !== base?.version)
      .map((m) => ({ version: m.version, dir: this.releaseDir(app, m.version), install: m.install }));
    return base ? [{ version: base.version, dir: base.dir, install: base.install, hashes: base.hashes }, ...stored] : stored;
  }

  /**
   * `stored` when it is the same release: the same uploaded bytes, or the same files (the manifest
   * digest, however they arrived); 409 otherwise.
   */
  private sameRelease(stored: ReleaseMeta, id: { sha256?: string; manifestSha256: string }): ReleaseMeta {
    if (stored.sha256 === id.sha256 || stored.manifestSha256 === id.manifestSha256) return stored;
    throw new DeployError('DEPLOY_ERR_VERSION_CONFLICT', `${stored.app}@${stored.version} has other files (${stored.manifestSha256 ?? stored.sha256})`);
  }

  private async commit(meta: ReleaseMeta, bundle: string, root: string): Promise<IngestResult> {
    // Another upload of the same version may have committed while this one was unpacking.
    const stored = await this.get(meta.app, meta.version);
    if (stored) return { release: this.sameRelease(stored, { sha256: meta.sha256, manifestSha256: meta.manifestSha256 as string }), created: false };
    const appDir = this.appDir(meta.app);
    await Promise.all(['releases', 'meta', 'bundles', 'deltas'].map((d) => mkdir(path.join(appDir, d), { recursive: true })));
    const keptBundle = this.uploadFile(meta);
    if (!(await exists(keptBundle))) await rename(bundle, keptBundle);
    const target = this.releaseDir(meta.app, meta.version);
    await rename(root, target);
    try {
      await writeJsonAtomic(this.metaFile(meta.app, meta.version), meta);
    } catch (err) {
      await rm(target, { recursive: true, force: true });
      throw err;
    }
    return { release: meta, created: true };
  }

  async get(app: string, version: string): Promise<ReleaseMeta | undefined> {
    return readJsonFile<ReleaseMeta>(this.metaFile(app, version));
  }

  async require(app: string, version: string): Promise<ReleaseMeta> {
    const meta = await this.get(app, version);
    if (meta === undefined) throw new DeployError('DEPLOY_ERR_RELEASE_NOT_FOUND', `${app}@${version}`);
    return meta;
  }

  /** Newest first. */
  async list(app: string): Promise<ReleaseMeta[]> {
    const names = await readdirOrEmpty(path.join(this.appDir(app), 'meta'));
    const metas = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.get(app, n.slice(0, -5))));
    return metas.filter((m): m is ReleaseMeta => m !== undefined).sort(newestFirst);
  }

  /** Apps with at least one release, sorted by name. */
  async apps(): Promise<string[]> {
    const names = await readdirOrEmpty(this.appsDir);
    const withReleases = await Promise.all(names.map(async (n) => ((await this.list(n)).length > 0 ? n : undefined)));
    return withReleases.filter((n): n is string => n !== undefined).sort();
  }

  /**
   * A release's metadata and the app's pointers, read synchronously (two small files): what a
   * deployment reads just before it dispatches, where every event-loop wake-up counts.
   */
  dispatchView(app: string, version: string): { release: ReleaseMeta; pointers: Pointers } {
    const release = readJsonFileNow<ReleaseMeta>(this.metaFile(app, version));
    if (release === undefined) throw new DeployError('DEPLOY_ERR_RELEASE_NOT_FOUND', `${app}@${version}`);
    const pointers = readJsonFileNow<Pointers>(path.join(this.appDir(app), 'pointers.json')) ?? { current: null, previous: null, updatedAt: null };
    return { release, pointers };
  }

  async pointers(app: string): Promise<Pointers> {
    return (await readJsonFile<Pointers>(path.join(this.appDir(app), 'pointers.json'))) ?? { current: null, previous: null, updatedAt: null };
  }

  /** Call inside withAppLock. */
  async setPointers(app: string, current: string | null, previous: string | null): Promise<Pointers> {
    const pointers: Pointers = { current, previous, updatedAt: new Date().toISOString() };
    await writeJsonAtomic(path.join(this.appDir(app), 'pointers.json'), pointers);
    await this.linkCurrent(app, current);
    return pointers;
  }

  /** `apps/<app>/current` → `releases/<version>`, for operators; pointers.json is the source of truth. */
  async linkCurrent(app: string, current: string | null, onlyIfWrong = false): Promise<void> {
    const link = path.join(this.appDir(app), 'current');
    if (current === null) return rm(link, { force: true });
    const target = path.join('releases', current);
    if (onlyIfWrong && (await readlink(link).catch(() => undefined)) === target) return;
    await swapSymlink(link, target);
  }

  /** A deployment of it succeeded: it is a rollback target from now on (once recorded, kept). */
  async markLive(app: string, version: string): Promise<void> {
    await this.withAppLock(app, async () => {
      const meta = await this.get(app, version);
      if (meta === undefined || meta.live !== false) return;
      await writeJsonAtomic(this.metaFile(app, version), { ...meta, live: true, liveAt: new Date().toISOString() });
    });
  }

  async markBad(app: string, version: string, reason: string): Promise<void> {
    await this.withAppLock(app, async () => {
      const meta = await this.get(app, version);
      if (meta === undefined) return;
      await writeJsonAtomic(this.metaFile(app, version), { ...meta, bad: true, badReason: reason });
    });
  }

  /**
   * Removes a pruned release's folder off the deployment's path: it is renamed into `tmp/` (one
   * call), then deleted in the background — a release with installed node_modules is thousands of
   * files and folders, whose deletion takes 100–300 ms on a busy disk. A crash leaves it to start-up
   * recovery, which empties `tmp/`.
   */
  private async discard(dir: string): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const trash = await mkdtemp(path.join(this.tmpDir, 'pruned-'));
    try {
      await rename(dir, path.join(trash, path.basename(dir)));
    } catch (err) {
      await rm(trash, { recursive: true, force: true });
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    const removal: Promise<void> = rm(trash, { recursive: true, force: true, maxRetries: 3 })
      .catch(() => undefined)
      .finally(() => this.discards.delete(removal));
    this.discards.add(removal);
  }

  /** Resolves once every pruned folder is deleted. */
  async discarded(): Promise<void> {
    await Promise.all(this.discards);
  }

  /**
   * Keeps the newest `keep` releases, the current and previous ones, and those whose folder is in
   * `inUse` (the directories live code came from, asked only when something is over `keep`; its
   * failure prunes nothing). Returns the versions removed.
   */
  async prune(app: string, keep: number, inUse?: () => Promise<ReadonlySet<string>>): Promise<string[]> {
    const used = inUse && (await this.list(app)).length > keep ? await inUse() : new Set<string>();
    return this.withAppLock(app, async () => {
      const { current, previous } = await this.pointers(app);
      const releases = await this.list(app);
      const over = releases.slice(keep).filter((r) => r.version !== current && r.version !== previous);
      const doomed: ReleaseMeta[] = [];
      for (const release of over) {
        // Workers name the directories as they opened them: realpath'd.
        const dir = await realpath(this.releaseDir(app, release.version)).catch(() => this.releaseDir(app, release.version));
        if (!used.has(dir)) doomed.push(release);
      }
      const kept = releases.filter((r) => !doomed.includes(r));
      for (const release of doomed) {
        // Metadata first: once it is gone the release is invisible, and a crash leaves only an orphan
        // folder that start-up recovery removes.
        await rm(this.metaFile(app, release.version), { force: true });
        await this.discard(this.releaseDir(app, release.version));
        if (!kept.some((k) => k.sha256 === release.sha256)) await rm(this.uploadFile(release), { force: true });
        if (release.delta && !kept.some((k) => k.manifestSha256 === release.manifestSha256)) {
          await rm(this.fullBundleFile(release), { force: true });
          await rm(shaFile(this.fullBundleFile(release)), { force: true });
        }
        const key = release.install?.key;
        if (key && !kept.some((k) => k.install?.key === key)) await removeArchive(this.appDir(app), key);
      }
      if (doomed.some((r) => r.install)) await this.installer.pruned(app, new Set(kept.flatMap((k) => (k.install ? [k.install.key] : []))));
      return doomed.map((r) => r.version);
    });
  }
}

let lastCreated = 0;

/** Release order is creation order: two uploads in the same millisecond still get distinct times. */
function monotonicNow(): string {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return new Date(lastCreated).toISOString();
}

function newestFirst(a: ReleaseMeta, b: ReleaseMeta): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.version < b.version ? 1 : -1;
}

/** Where an upload's .tgz is written while it is received and unpacked. */
function stagedBundle(staging: string): string {
  return path.join(staging, 'bundle.tgz');
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** Anything that is not already a DeployError is a disk fault while storing (ENOSPC, EIO, ...). */
function asStorageError(err: unknown): unknown {
  if (isDeployError(err)) return err;
  if (typeof (err as NodeJS.ErrnoException)?.syscall === 'string') {
    return new DeployError('DEPLOY_ERR_STORAGE', (err as Error).message, { cause: err });
  }
  return err;
}
