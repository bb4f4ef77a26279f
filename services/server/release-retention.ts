import { mkdir, mkdtemp, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Installer } from './install/dependencies.js';
import { removeArchive } from './install/node-modules-archive.js';
import { isErrno } from './fs-atomic.js';
import { shaFile } from './full-bundle.js';
import type { ReleaseMeta, ReleaseStore } from './release-store.js';

/**
 * Retention: which releases an app keeps, and the removal of the others with what only they used
 * (their upload, their full bundle, their node_modules archive and spare).
 */
export class ReleaseRetention {
  /** Deletions of pruned release folders still running (`discard`). */
  private readonly discards = new Set<Promise<void>>();

  constructor(private readonly store: ReleaseStore, private readonly installer: Installer) {}

  /**
   * Removes a pruned release's folder off the deployment's path: it is renamed into `tmp/` (one
   * call), then deleted in the background — a release with installed node_modules is thousands of
   * files and folders, whose deletion takes 100–300 ms on a busy disk. A crash leaves it to start-up
   * recovery, which empties `tmp/`.
   */
  private async discard(dir: string): Promise<void> {
    await mkdir(this.store.tmpDir, { recursive: true });
    const trash = await mkdtemp(path.join(this.store.tmpDir, 'pruned-'));
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
    const store = this.store;
    const used = inUse && (await store.list(app)).length > keep ? await inUse() : new Set<string>();
    return store.withAppLock(app, async () => {
      const { current, previous } = await store.pointers(app);
      const releases = await store.list(app);
      const over = releases.slice(keep).filter((r) => r.version !== current && r.version !== previous);
      const doomed: ReleaseMeta[] = [];
      for (const release of over) {
        // Workers name the directories as they opened them: realpath'd.
        const dir = await realpath(store.releaseDir(app, release.version)).catch(() => store.releaseDir(app, release.version));
        if (!used.has(dir)) doomed.push(release);
      }
      const kept = releases.filter((r) => !doomed.includes(r));
      for (const release of doomed) {
        // Metadata first: once it is gone the release is invisible, and a crash leaves only an orphan
        // folder that start-up recovery removes.
        await rm(store.metaFile(app, release.version), { force: true });
        await this.discard(store.releaseDir(app, release.version));
        if (!kept.some((k) => k.sha256 === release.sha256)) await rm(store.uploadFile(release), { force: true });
        if (release.delta && !kept.some((k) => k.manifestSha256 === release.manifestSha256)) {
          await rm(store.fullBundleFile(release), { force: true });
          await rm(shaFile(store.fullBundleFile(release)), { force: true });
        }
        const key = release.install?.key;
        if (key && !kept.some((k) => k.install?.key === key)) await removeArchive(store.appDir(app), key);
      }
      if (doomed.some((r) => r.install)) await this.installer.pruned(app, new Set(kept.flatMap((k) => (k.install ? [k.install.key] : []))));
      return doomed.map((r) => r.version);
    });
  }
}
