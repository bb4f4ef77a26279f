import { readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { HostPortSources } from '../../agent/port-source.js';
import type { AppManifest } from '../../agent/messages.js';
import { DeployError } from './errors.js';
import { Installer, type InstallerOptions, type InstallRecord } from './install/dependencies.js';
import { isErrno, readJsonFile, readJsonFileNow, swapSymlink, writeJsonAtomic } from './fs-atomic.js';
import { KeyedQueue } from '../../agent/common/serial-queue.js';
import type { Limits } from './options.js';
import { builtFullBundle, ensureFullBundle, type FullBundle } from './full-bundle.js';
import { readReleaseSources } from './source-manifest.js';
import { ReleaseIntake } from './release-intake.js';
import { ReleaseRetention } from './release-retention.js';

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

/** What the store adds to a bundle's own settings: the hosts' port sources, and how it installs dependencies. */
export interface StoreSettings {
  ports?: HostPortSources;
  install?: Omit<InstallerOptions, 'dataDir'>;
}

/**
 * The data directory's releases: their layout, metadata and pointers. A release is unpacked into
 * `<dataDir>/tmp/` (same filesystem), checked (limits, links, manifest), hashed, and only then
 * renamed into `releases/<version>/`, followed by its metadata file; so nothing half-unpacked is
 * ever visible (release-intake.ts). Retention removes old ones (release-retention.ts).
 */
export class ReleaseStore {
  readonly appsDir: string;
  readonly tmpDir: string;
  private readonly lock = new KeyedQueue();
  private readonly intake: ReleaseIntake;
  private readonly retention: ReleaseRetention;

  constructor(readonly dataDir: string, limits: Limits, settings: StoreSettings = {}) {
    this.appsDir = path.join(dataDir, 'apps');
    this.tmpDir = path.join(dataDir, 'tmp');
    const installer = new Installer({ dataDir, ...settings.install });
    this.intake = new ReleaseIntake(this, limits, installer, settings.ports ?? {});
    this.retention = new ReleaseRetention(this, installer);
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
  ingest(app: string, version: string, body: Readable, opts: { expectedSha256?: string; by: string }): Promise<IngestResult> {
    return this.intake.ingest(app, version, body, opts);
  }

  /**
   * Receives a delta against `base`, the app's current release, and stores the whole release it
   * makes, checked against `manifestSha256` (release-intake.ts).
   */
  ingestDelta(app: string, version: string, body: Readable,
    opts: { base: string; manifestSha256: string; expectedSha256?: string; by: string }): Promise<IngestResult> {
    return this.intake.ingestDelta(app, version, body, opts);
  }

  /** A dry run's copy of a bundle (`hotdeploy plan`), checked as an upload; `use` sees it, then it is removed. */
  stage<T>(app: string, body: Readable, opts: { expectedSha256?: string }, use: (staged: StagedBundle) => Promise<T>): Promise<T> {
    return this.intake.stage(app, body, opts, use);
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
    const release = this.getNow(app, version);
    if (release === undefined) throw new DeployError('DEPLOY_ERR_RELEASE_NOT_FOUND', `${app}@${version}`);
    return { release, pointers: this.pointersNow(app) };
  }

  /** `get` with one synchronous read: a release's metadata on a push's path (a delta's base, the dispatch). */
  getNow(app: string, version: string): ReleaseMeta | undefined {
    return readJsonFileNow<ReleaseMeta>(this.metaFile(app, version));
  }

  async pointers(app: string): Promise<Pointers> {
    return (await readJsonFile<Pointers>(path.join(this.appDir(app), 'pointers.json'))) ?? noPointers();
  }

  /** `pointers` with one synchronous read, for what a push waits on. */
  pointersNow(app: string): Pointers {
    return readJsonFileNow<Pointers>(path.join(this.appDir(app), 'pointers.json')) ?? noPointers();
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

  /**
   * A deployment of `version` succeeded: the pointers name it current (and `previous`), and it is a
   * rollback target from now on (`live`, once recorded kept). Two files, written at once under the
   * app's lock; each write is atomic and durable, and both can be repeated (start-up recovery does
   * when the deployment's intent outlived them).
   */
  async promote(app: string, version: string, previous: string | null): Promise<void> {
    await this.withAppLock(app, async () => {
      const [pointers, live] = await Promise.allSettled([this.setPointers(app, version, previous), this.markLive(app, version)]);
      for (const write of [pointers, live]) if (write.status === 'rejected') throw write.reason;
    });
  }

  /** Call inside withAppLock. */
  private async markLive(app: string, version: string): Promise<void> {
    const meta = await this.get(app, version);
    if (meta === undefined || meta.live !== false) return;
    await writeJsonAtomic(this.metaFile(app, version), { ...meta, live: true, liveAt: new Date().toISOString() });
  }

  async markBad(app: string, version: string, reason: string): Promise<void> {
    await this.withAppLock(app, async () => {
      const meta = await this.get(app, version);
      if (meta === undefined) return;
      await writeJsonAtomic(this.metaFile(app, version), { ...meta, bad: true, badReason: reason });
    });
  }

  /** Resolves once every pruned folder is deleted. */
  discarded(): Promise<void> {
    return this.retention.discarded();
  }

  /**
   * Keeps the newest `keep` releases, the current and previous ones, and those whose folder is in
   * `inUse` (release-retention.ts). Returns the versions removed.
   */
  prune(app: string, keep: number, inUse?: () => Promise<ReadonlySet<string>>): Promise<string[]> {
    return this.retention.prune(app, keep, inUse);
  }
}

function noPointers(): Pointers {
  return { current: null, previous: null, updatedAt: null };
}

function newestFirst(a: ReleaseMeta, b: ReleaseMeta): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.version < b.version ? 1 : -1;
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
