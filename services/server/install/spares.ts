import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { linkTree, NODE_MODULES, type TreeIndex } from './tree.js';

interface Spare {
  /** Resolves once the spare is ready (or failed: then there is none). */
  ready: Promise<boolean>;
  tree: TreeIndex;
  /** The release it was linked from. */
  from: string;
}

/**
 * Linked copies of an app's installed node_modules made ahead of the next upload, one per app and
 * install key: `<dataDir>/spares/<app>/<key>/node_modules`. Linking 3,000 files and their folders
 * one by one takes tens of milliseconds on a quiet disk and hundreds on a busy one; renaming a ready
 * copy into the staging directory takes one call. So the node_modules step of an upload whose
 * install did not change is a rename, and the linking happens after the previous release was stored,
 * off the upload's path (an upload that comes while one is being made waits for it). A spare is a
 * cache: what an earlier run left is removed, and an upload that finds none (the first after a
 * start, or two at once) links from a release as before. Dry runs never take one.
 */
export class Spares {
  private readonly spares = new Map<string, Spare>();
  /** What an earlier run left is removed before the first spare is made. */
  private cleared: Promise<void> | undefined;

  constructor(private readonly dir: string) {}

  /**
   * Makes a spare of the release `from`'s node_modules (listed by `tree`) for `app` and `key`, in
   * the background, unless there is one. A failure leaves none (nothing depends on it).
   */
  prepare(app: string, key: string, from: { version: string; dir: string }, tree: TreeIndex): void {
    const id = `${app}/${key}`;
    if (this.spares.has(id)) return;
    const ready = this.link(app, key, from.dir, tree).then(() => true, async () => {
      await rm(this.folder(app, key), { recursive: true, force: true }).catch(() => undefined);
      return false;
    });
    this.spares.set(id, { ready, tree, from: from.version });
  }

  /**
   * Moves the spare for `app` and `key` to `<root>/node_modules` (waiting for one being made);
   * returns its file index and the release it came from, or undefined when there is none.
   */
  async take(app: string, key: string, root: string): Promise<{ tree: TreeIndex; from: string } | undefined> {
    const id = `${app}/${key}`;
    const spare = this.spares.get(id);
    if (!spare) return undefined;
    this.spares.delete(id);
    if (!(await spare.ready)) return undefined;
    try {
      await rename(path.join(this.folder(app, key), NODE_MODULES), path.join(root, NODE_MODULES));
      return { tree: spare.tree, from: spare.from };
    } catch {
      return undefined;
    } finally {
      await rm(this.folder(app, key), { recursive: true, force: true });
    }
  }

  /** Drops the spares of `app` whose install no kept release has. */
  async drop(app: string, keep: (key: string) => boolean): Promise<void> {
    for (const id of [...this.spares.keys()].filter((i) => i.startsWith(`${app}/`))) {
      const key = id.slice(app.length + 1);
      if (keep(key)) continue;
      const spare = this.spares.get(id);
      this.spares.delete(id);
      await spare?.ready;
      await rm(this.folder(app, key), { recursive: true, force: true });
    }
  }

  private folder(app: string, key: string): string {
    return path.join(this.dir, app, key);
  }

  /** Links into a fresh folder first, then renames it in place: a spare is there only complete. */
  private async link(app: string, key: string, from: string, tree: TreeIndex): Promise<void> {
    this.cleared ??= rm(this.dir, { recursive: true, force: true });
    await this.cleared;
    await mkdir(path.join(this.dir, app), { recursive: true });
    const scratch = await mkdtemp(path.join(this.dir, app, '.making-'));
    try {
      await linkTree(from, scratch, tree, true);
      await rename(scratch, this.folder(app, key));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}
