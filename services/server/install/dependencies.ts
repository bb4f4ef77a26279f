import { copyFile, lstat, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { nodeTarget, type NodeTarget } from '../../../agent/common/node-target.js';
import { SerialQueue } from '../../../agent/common/serial-queue.js';
import { DeployError } from '../errors.js';
import { readFileHashes, RESERVED_DIR, type StoredFileHashes } from '../file-hashes.js';
import { dependencyPlan, type DependencyPlan, type NpmLockfile } from './bundle-dependencies.js';
import { installKey, rootInstallScripts, type InstallEnvironment } from './install-key.js';
import { npmVersion, prepareNpmDir, runNpm, type NpmSettings } from './npm.js';
import { Spares } from './spares.js';
import { hashTree, linkTree, NODE_MODULES, nodeModulesPart, ownFilesDigest, type TreeIndex } from './tree.js';

/** How a release got its `node_modules` on the host (release metadata, and `.hotdeploy/install.json`). */
export interface InstallRecord {
  /** The install key (install-key.ts): equal keys, equal node_modules. */
  key: string;
  lockfile: NpmLockfile;
  /** What the native parts of node_modules were built for; a host elsewhere cannot use them. */
  node: NodeTarget;
  npm: string;
  /** Whether install scripts ran (`hotdeploy.installScripts`). */
  scripts: boolean;
  /** The app's own install scripts ran too: these node_modules are never linked into another release. */
  ownScripts?: true;
  /** Files under node_modules. */
  files: number;
  /** `npm ci` ran in this release's staging directory, or `linked`: hard links to release `from`'s. */
  how: 'npm ci' | 'linked';
  from?: string;
  /** Time the step took. */
  ms: number;
}

/** A stored release that may lend its node_modules: its folder, its install record, its file index if already read. */
export interface InstallSource {
  version: string;
  dir: string;
  install?: InstallRecord | undefined;
  hashes?: StoredFileHashes | undefined;
}

export interface InstallerOptions {
  dataDir: string;
  /** `serve --npmrc FILE`: npm's settings for every install (registries, their tokens, proxy). */
  npmrc?: string | undefined;
  /** Deadline of one `npm ci` (default 10 minutes). */
  timeoutMs?: number | undefined;
}

export const INSTALL_FILE = 'install.json';

/**
 * Production dependencies installed on the host, for bundles that bring a lockfile and no
 * node_modules (`npm pack` leaves node_modules out, and `hotdeploy push` adds the lockfile). Runs in
 * the staging directory after the unpacker let go of it, before the release becomes visible. When
 * a stored release of the app has the same install key, its node_modules are hard-linked (no npm,
 * same inodes, same hashes: the runtime sees no package change); otherwise `npm ci --omit=dev
 * --ignore-scripts` (scripts only with `hotdeploy.installScripts`) runs, one at a time.
 */
export class Installer {
  private readonly npm: NpmSettings;
  private readonly installs = new SerialQueue();
  private readonly spares: Spares;
  private npmDir: Promise<void> | undefined;

  constructor(options: InstallerOptions) {
    this.npm = { dir: path.join(options.dataDir, 'npm'), npmrc: options.npmrc, timeoutMs: options.timeoutMs ?? 600_000 };
    this.spares = new Spares(path.join(options.dataDir, 'spares'));
  }

  /**
   * Gives the unpacked bundle at `root` its node_modules, when it needs them: returns their file
   * index (for `files.json`) and the record, or undefined when the bundle brings its own or has no
   * lockfile. `sources` lists stored releases that may lend theirs, preferred first; `app`, for an
   * upload that will be stored (not a dry run), lets it take the app's spare (spares.ts). Throws
   * DEPLOY_ERR_INSTALL (npm's last lines) or DEPLOY_ERR_LOCKFILE and leaves no node_modules behind.
   */
  async provide(root: string, sources: () => Promise<InstallSource[]>, app?: string): Promise<{ tree: TreeIndex; record: InstallRecord } | undefined> {
    const plan = await dependencyPlan(root);
    if (plan.kind !== 'npm') return undefined;
    const started = performance.now();
    const env = await this.environment();
    // The app's own install scripts may write anywhere (a generated client under node_modules, a
    // build beside its files) from files other releases do not share: their node_modules are never
    // linked, and their key names the files (a host takes an archive of the same output only).
    const own = rootInstallScripts(plan) !== undefined;
    const key = installKey(plan, env, own ? await ownFilesDigest(root) : undefined);
    const done = (tree: TreeIndex, how: InstallRecord['how'], from?: string): { tree: TreeIndex; record: InstallRecord } => ({
      tree,
      record: {
        key, lockfile: plan.lockfile, node: env.node, npm: env.npm, scripts: plan.scripts, ...(own ? { ownScripts: true as const } : {}),
        files: Object.keys(tree.files).length,
        how, ...(from ? { from } : {}), ms: Math.round((performance.now() - started) * 10) / 10,
      },
    });
    if (!own) {
      const spare = app === undefined ? undefined : await this.spares.take(app, key, root);
      if (spare) return done(spare.tree, 'linked', spare.from);
      for (const source of await sources()) {
        if (source.install?.key !== key) continue;
        const tree = await this.linkFrom(source, root);
        if (tree) return done(tree, 'linked', source.version);
      }
    }
    return done(await this.installs.run(() => this.install(root, plan)), 'npm ci');
  }

  /** A release with installed node_modules was stored: the next upload of the app finds them linked already. */
  stored(app: string, release: { version: string; dir: string }, record: InstallRecord, tree: TreeIndex): void {
    // Never linked (provide): a spare of them would never be taken.
    if (record.ownScripts === true) return;
    this.spares.prepare(app, record.key, release, tree);
  }

  /** Retention removed releases: spares of installs no kept release has go too. */
  pruned(app: string, kept: ReadonlySet<string>): Promise<void> {
    return this.spares.drop(app, (key) => kept.has(key));
  }

  private async environment(): Promise<InstallEnvironment> {
    this.npmDir ??= prepareNpmDir(this.npm).catch((err: unknown) => {
      this.npmDir = undefined;
      throw err;
    });
    await this.npmDir;
    const npmrc = this.npm.npmrc === undefined ? null : await readFile(this.npm.npmrc).catch((err: Error) => {
      throw new DeployError('DEPLOY_ERR_INSTALL', `the service's npmrc ${this.npm.npmrc} cannot be read: ${err.message}`);
    });
    return { npmrc, npm: await npmVersion(this.npm), node: nodeTarget() };
  }

  private linkFrom(source: InstallSource, root: string): Promise<TreeIndex | undefined> {
    return linkInstalled(source.dir, root, source.hashes);
  }

  private async install(root: string, plan: Extract<DependencyPlan, { kind: 'npm' }>): Promise<TreeIndex> {
    const args = ['ci', '--omit=dev', '--no-audit', '--no-fund', ...(plan.scripts ? [] : ['--ignore-scripts'])];
    try {
      if (plan.scripts) await ownCopies(root);
      await runNpm(args, root, this.npm);
      // npm's hidden lockfile speeds up a later npm run in this folder; none comes, and it differs per install.
      await rm(path.join(root, NODE_MODULES, '.package-lock.json'), { force: true });
      if (!(await stat(path.join(root, NODE_MODULES)).then(() => true, () => false))) return { files: {}, links: [] };
      return await hashTree(root);
    } catch (err) {
      await rm(path.join(root, NODE_MODULES), { recursive: true, force: true });
      throw err;
    }
  }
}

/**
 * The node_modules of the release `from` (as its `files.json` lists them, or `hashes` already read)
 * as hard links under `root`; undefined, and nothing left behind, when it cannot lend them (its
 * index unreadable, or the release pruned meanwhile).
 */
export async function linkInstalled(from: string, root: string, hashes?: StoredFileHashes): Promise<TreeIndex | undefined> {
  const index = hashes ?? (await readFileHashes(from));
  if (!index) return undefined;
  const tree = nodeModulesPart(index);
  try {
    await linkTree(from, root, tree);
    return tree;
  } catch {
    await rm(path.join(root, NODE_MODULES), { recursive: true, force: true });
    return undefined;
  }
}

/**
 * Gives each file under `root` that shares its inode (a hard link to the current release's copy of
 * the same bytes, or to another file of the bundle) an inode of its own, before install scripts run
 * there: a script that rewrites a file of the bundle in place must not rewrite the stored releases
 * that share it, which never change. Copied beside `root`, then renamed over the link.
 */
async function ownCopies(root: string): Promise<void> {
  const scratch = path.join(path.dirname(root), `.own-copy-${process.pid}`);
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(abs);
      if (!entry.isFile()) continue;
      const st = await lstat(abs);
      if (st.nlink < 2) continue;
      await copyFile(abs, scratch);
      await utimes(scratch, st.atime, st.mtime);
      await rename(scratch, abs);
    }
  };
  await walk(root);
}

/**
 * `.hotdeploy/install.json`: how the release got its node_modules (`key` first of all: a host finds
 * a release with the same install by it; hosts write the install they were sent).
 */
export async function writeInstallRecord(root: string, record: { key: string }): Promise<void> {
  await writeFile(path.join(root, RESERVED_DIR, INSTALL_FILE), JSON.stringify(record) + '\n');
}

export async function readInstallRecord(dir: string): Promise<InstallRecord | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, RESERVED_DIR, INSTALL_FILE), 'utf8')) as InstallRecord;
  } catch {
    return undefined;
  }
}
