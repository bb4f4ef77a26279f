import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { HostPortSources } from '../../agent/port-source.js';
import { DeployError, isDeployError, storageError } from './errors.js';
import { Extraction, extractBundle } from './unpack/extract.js';
import { readFileHashes } from './file-hashes.js';
import type { Installer } from './install/dependencies.js';
import { withoutTree } from './install/tree.js';
import { isErrno, writeJsonAtomic } from './fs-atomic.js';
import type { Limits } from './options.js';
import { assembleDelta } from './unpack/delta.js';
import { readReleaseSourcesNow } from './source-manifest.js';
import { UploadAdmission } from './unpack/admission.js';
import { BundleFile, receiveBundle, type BundleKeeper, type ReceivedBundle } from './unpack/upload.js';
import { checked, sameRelease, type BaseRelease, type CheckContext, type Unpacked } from './release-checks.js';
import type { IngestResult, ReleaseMeta, ReleaseStore, StagedBundle } from './release-store.js';

/**
 * A release from the upload's first byte to its commit: admitted (unpack/admission.ts), received
 * into a staging directory under `tmp/` while it is unpacked, checked (release-checks.ts), then
 * renamed into `releases/<version>/` under the app's lock and followed by its metadata file.
 */
export class ReleaseIntake {
  private readonly admission: UploadAdmission;
  private readonly checks: CheckContext;

  constructor(private readonly store: ReleaseStore, private readonly limits: Limits, private readonly installer: Installer, ports: HostPortSources) {
    this.admission = new UploadAdmission({ maxUploads: limits.maxUploads, maxQueuedUploads: limits.maxQueuedUploads, maxWaitMs: limits.uploadIdleTimeoutMs });
    this.checks = { store, installer, ports };
  }

  /** Receives, checks and stores one upload; throws a DeployError and leaves nothing behind on failure. */
  async ingest(app: string, version: string, body: Readable, opts: { expectedSha256?: string; by: string }): Promise<IngestResult> {
    return this.admitted(body, () => this.withStaging(`${app}-${version}-`, async (staging) => {
      let unpacked: Unpacked;
      let received: ReceivedBundle & { file: string };
      const stored = await this.store.get(app, version);
      if (stored) {
        // A re-upload of a stored version is only received: the same bytes answer with the release;
        // other bytes are unpacked, and answer with it when they hold the same files (409 otherwise).
        received = await this.receive(staging, body, opts.expectedSha256);
        if (stored.sha256 === received.sha256) return { release: stored, created: false };
        unpacked = await checked(this.checks, app, true, await extractBundle(received.file, path.join(staging, 'raw'), this.limits), undefined, version);
      } else {
        ({ received, unpacked } = await this.receiveUnpacking(app, staging, body, opts.expectedSha256, true));
      }
      return this.record(app, version, received, unpacked, opts.by);
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
      // Small reads a push waits on, made with synchronous calls.
      const stored = this.store.getNow(app, version);
      if (stored) {
        // A retried delta whose answer was lost: its base may no longer be current, its files are known.
        await this.receive(staging, body, opts.expectedSha256);
        const known = sameRelease(stored, { manifestSha256: opts.manifestSha256 });
        return { release: known, created: false };
      }
      const baseMeta = this.store.getNow(app, opts.base);
      const baseDir = this.store.releaseDir(app, opts.base);
      const base = baseMeta && readReleaseSourcesNow(baseDir);
      if (!baseMeta || !base) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_FOUND', `${app}@${opts.base}`);
      const { current } = this.store.pointersNow(app);
      if (current !== opts.base) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', `${app}'s current release is ${current ?? 'none'}`);
      const extraction = new Extraction(path.join(staging, 'raw'), this.limits, { keep: stagedBundle(staging), delta: true });
      const received = await this.receive(staging, body, opts.expectedSha256, extraction).catch(async (err: unknown) => {
        await extraction.abandon(isDeployError(err) ? err : new DeployError('DEPLOY_ERR_UPLOAD_ABORTED'));
        throw err;
      });
      const assembled = await assembleDelta(await extraction.result, { dir: baseDir, sources: base.sources, bytes: baseMeta.bytes }, opts.manifestSha256, this.limits)
        .catch(async (err: unknown) => {
          // Retention removed the base while the delta arrived (two pushes meanwhile): it is no longer current.
          if (isErrno(err, 'ENOENT') && !(await this.store.get(app, opts.base))) {
            throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', `${app}@${opts.base} was pruned while the delta arrived`);
          }
          throw err;
        });
      const unpacked = await checked(this.checks, app, true, assembled, { version: opts.base, dir: baseDir, hashes: base.hashes, install: baseMeta.install });
      return this.record(app, version, received, unpacked, opts.by, { base: opts.base });
    }));
  }

  /** Records a checked release: committed under the app's lock, its installed node_modules offered as a spare's source. */
  private async record(app: string, version: string, received: ReceivedBundle & { file: string }, unpacked: Unpacked, by: string,
    delta?: ReleaseMeta['delta']): Promise<IngestResult> {
    const meta: ReleaseMeta = {
      app, version, sha256: received.sha256, bundleBytes: received.bytes, manifestSha256: unpacked.manifestSha256,
      ...(delta ? { delta } : {}), files: unpacked.files, bytes: unpacked.bytes,
      createdAt: monotonicNow(), createdBy: by, bad: false, live: false, manifest: unpacked.manifest,
      ...(unpacked.install ? { install: unpacked.install } : {}),
    };
    const result = await this.store.withAppLock(app, () => this.commit(meta, received.file, unpacked.root));
    if (result.created && unpacked.install && unpacked.tree) {
      this.installer.stored(app, { version, dir: this.store.releaseDir(app, version) }, unpacked.install, unpacked.tree);
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
    const at = path.join(this.store.tmpDir, prefix);
    const staging = await mkdtemp(at).catch(async (err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
      await mkdir(this.store.tmpDir, { recursive: true });
      return mkdtemp(at);
    });
    try {
      return await job(staging);
    } catch (err) {
      throw asStorageError(err);
    } finally {
      // A committed upload leaves the folder empty (its tree and .tgz were renamed out): one call removes it.
      await rmdir(staging).catch(() => rm(staging, { recursive: true, force: true, maxRetries: 3 }));
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
    return { received, unpacked: await checked(this.checks, app, release, await extraction.result, base) };
  }

  /**
   * The current release's folder and file hashes, so unchanged files are linked, not written, and
   * `changes.json` can say what differs from it; none when there is no current release or its
   * `files.json` cannot be read (everything is written, and workers read the whole `files.json`).
   */
  private async baseRelease(app: string): Promise<BaseRelease | undefined> {
    const { current } = await this.store.pointers(app).catch(() => ({ current: null }));
    if (current === null) return undefined;
    const dir = this.store.releaseDir(app, current);
    const [hashes, meta] = await Promise.all([readFileHashes(dir), this.store.get(app, current)]);
    return hashes && { version: current, dir, hashes, install: meta?.install };
  }

  private async commit(meta: ReleaseMeta, bundle: string, root: string): Promise<IngestResult> {
    // Another upload of the same version may have committed while this one was unpacking. Read and
    // made with synchronous calls (a small file, folders that are there after the first release).
    const stored = this.store.getNow(meta.app, meta.version);
    if (stored) return { release: sameRelease(stored, { sha256: meta.sha256, manifestSha256: meta.manifestSha256 as string }), created: false };
    const appDir = this.store.appDir(meta.app);
    for (const dir of ['releases', 'meta', 'bundles', 'deltas']) mkdirSync(path.join(appDir, dir), { recursive: true });
    const keptBundle = this.store.uploadFile(meta);
    if (!existsSync(keptBundle)) await rename(bundle, keptBundle);
    const target = this.store.releaseDir(meta.app, meta.version);
    await rename(root, target);
    try {
      await writeJsonAtomic(this.store.metaFile(meta.app, meta.version), meta);
    } catch (err) {
      await rm(target, { recursive: true, force: true });
      throw err;
    }
    return { release: meta, created: true };
  }
}

let lastCreated = 0;

/** Release order is creation order: two uploads in the same millisecond still get distinct times. */
function monotonicNow(): string {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return new Date(lastCreated).toISOString();
}

/** Where an upload's .tgz is written while it is received and unpacked. */
function stagedBundle(staging: string): string {
  return path.join(staging, 'bundle.tgz');
}

/** Anything that is not already a DeployError is a disk fault while storing (ENOSPC, EIO, ...). */
function asStorageError(err: unknown): unknown {
  if (isDeployError(err)) return err;
  if (typeof (err as NodeJS.ErrnoException)?.syscall === 'string') {
    return storageError(err as NodeJS.ErrnoException);
  }
  return err;
}
