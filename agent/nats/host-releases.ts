import { mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ObjectStore } from '@nats-io/obj';
import { pullBundle } from './bundles.js';
import type { ReleaseInstall, ReleaseRef } from './protocol.js';
import { nodeTarget, targetMismatch, type NodeTarget } from '../common/node-target.js';
import { HotError } from '../errors.js';

/**
 * The guarded extraction of the deploy service (limits, link checks, file hashes), injected by the
 * CLI because `agent/` never imports `services/` (dependencies point one way). It unpacks `bundleFile` into the fresh
 * folder `dest` and returns the app's root inside it; it throws (a DEPLOY_ERR_* code) on bad input.
 * With `deps`, the release's node_modules come from the archive the service made of its install, or
 * as links from a release of this host with the same install, and `.hotdeploy/install.json` says so.
 */
export type ReleaseUnpacker = (bundleFile: string, dest: string, deps?: InstalledDependencies, delta?: DeltaSource) => Promise<{ root: string }>;

/** With it, the unpacker's file is a delta: the release is the base folder's files plus it, and must make `manifestSha256`. */
export interface DeltaSource {
  baseDir: string;
  manifestSha256: string;
}

/** How a host got a release: the delta against a release it has, or the whole bundle. */
export interface Fetched {
  app: string;
  version: string;
  via: 'delta' | 'bundle';
  bytes: number;
  /** Why a delta was not used when the release had one. */
  reason?: string;
}

/** Where a release's installed node_modules come from on a host. */
export interface InstalledDependencies {
  install: ReleaseInstall;
  from: { archive: string } | { release: string };
}

/** Written by the unpacker into each release whose node_modules the service installed: `{ key, ... }`. */
const INSTALL_RECORD = path.join('.hotdeploy', 'install.json');

export interface Served {
  version: string;
  releaseDir: string;
}

/**
 * A host's own releases under `<dataDir>/releases/<app>/<version>`, unpacked the way the service
 * does it: into `<dataDir>/tmp/` (same filesystem), then renamed, so a release directory exists
 * only complete. `served.json` says which release this host's workers run, per app.
 */
export class HostReleases {
  private readonly tmpDir: string;
  private readonly servedFile: string;
  private served = new Map<string, Served>();

  /** `target`: what this host's Node runs (installed node_modules must have been built for it). */
  constructor(private readonly dataDir: string, private readonly bundles: ObjectStore, private readonly unpack: ReleaseUnpacker,
    private readonly target: NodeTarget = nodeTarget(), private readonly onFetched: (fetched: Fetched) => void = () => undefined) {
    this.tmpDir = path.join(dataDir, 'tmp');
    this.servedFile = path.join(dataDir, 'nats', 'served.json');
  }

  /** Start-up: partial unpacks removed, the served map read back. */
  async recover(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    const text = await readFile(this.servedFile, 'utf8').catch(() => '{}');
    this.served = new Map(Object.entries(JSON.parse(text) as Record<string, Served>));
  }

  releaseDir(app: string, version: string): string {
    return path.join(this.dataDir, 'releases', app, version);
  }

  current(app: string): Served | undefined {
    return this.served.get(app);
  }

  all(): Map<string, Served> {
    return this.served;
  }

  async setServed(app: string, served: Served): Promise<void> {
    this.served.set(app, served);
    await mkdir(path.dirname(this.servedFile), { recursive: true });
    const tmp = `${this.servedFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.served), null, 2));
    await rename(tmp, this.servedFile);
  }

  /**
   * Pulls (sha256-checked) and unpacks the release unless this host already has it, with the
   * node_modules the service installed for it: linked from a release here with the same install,
   * else pulled as their own object. A host whose Node cannot run them refuses (HOT_ERR_NODE_TARGET).
   */
  async ensure(ref: ReleaseRef): Promise<string> {
    const target = this.releaseDir(ref.app, ref.version);
    if (await stat(target).then(() => true, () => false)) return target;
    return this.unpacked(ref, async (root) => {
      await mkdir(path.dirname(target), { recursive: true });
      await rename(root, target);
      return target;
    });
  }

  /**
   * A dry run's look at a release: `use` gets its directory here when this host has it, else the
   * release unpacked into the temporary area, which is removed once `use` is done; nothing is kept.
   */
  async peek<T>(ref: ReleaseRef, use: (dir: string) => Promise<T>): Promise<T> {
    const target = this.releaseDir(ref.app, ref.version);
    if (await stat(target).then(() => true, () => false)) return use(target);
    return this.unpacked(ref, use);
  }

  /** The release pulled and unpacked under a fresh staging directory, given to `use`, then removed. */
  private async unpacked<T>(ref: ReleaseRef, use: (root: string) => Promise<T>): Promise<T> {
    const mismatch = ref.install && targetMismatch(ref.install.node, this.target);
    if (mismatch) {
      throw new HotError('HOT_ERR_NODE_TARGET', `${ref.app}@${ref.version}: ${mismatch}; run the service's Node line on this host, or bundle node_modules built for it`);
    }
    const staging = await mkdtemp(path.join(this.tmpDir, `${ref.app}-${ref.version}-`));
    try {
      const deps = ref.install && await this.dependencies(ref.app, ref.install, staging);
      return await use(await this.fromDelta(ref, staging, deps) ?? await this.fromBundle(ref, staging, deps));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * The release from its delta when this host has the delta's base: only the changed files cross
   * the network. Any failure (the base went, the object is missing or replaced, the result is not
   * the declared manifest) leaves the whole bundle to do it; undefined then.
   */
  private async fromDelta(ref: ReleaseRef, staging: string, deps: InstalledDependencies | undefined): Promise<string | undefined> {
    if (!ref.delta) return undefined;
    const baseDir = this.releaseDir(ref.app, ref.delta.base);
    if (!(await stat(baseDir).then(() => true, () => false))) {
      this.onFetched({ app: ref.app, version: ref.version, via: 'bundle', bytes: 0, reason: `no ${ref.delta.base} here` });
      return undefined;
    }
    const file = path.join(staging, 'delta.tgz');
    const dest = path.join(staging, 'delta');
    try {
      await pullBundle(this.bundles, ref.delta, file);
      const { root } = await this.unpack(file, dest, deps, { baseDir, manifestSha256: ref.delta.manifestSha256 });
      this.onFetched({ app: ref.app, version: ref.version, via: 'delta', bytes: (await stat(file)).size });
      return root;
    } catch (err) {
      await rm(dest, { recursive: true, force: true });
      this.onFetched({ app: ref.app, version: ref.version, via: 'bundle', bytes: 0, reason: (err as Error).message });
      return undefined;
    }
  }

  private async fromBundle(ref: ReleaseRef, staging: string, deps: InstalledDependencies | undefined): Promise<string> {
    const bundle = path.join(staging, 'bundle.tgz');
    await pullBundle(this.bundles, ref, bundle);
    const { root } = await this.unpack(bundle, path.join(staging, 'raw'), deps);
    if (!ref.delta) this.onFetched({ app: ref.app, version: ref.version, via: 'bundle', bytes: (await stat(bundle)).size });
    return root;
  }

  private async dependencies(app: string, install: ReleaseInstall, staging: string): Promise<InstalledDependencies> {
    const local = await this.releaseWithInstall(app, install.key);
    if (local) return { install, from: { release: local } };
    const archive = path.join(staging, 'node_modules.tgz');
    await pullBundle(this.bundles, install, archive);
    return { install, from: { archive } };
  }

  /** A release of `app` on this host whose node_modules are the same install, if any. */
  private async releaseWithInstall(app: string, key: string): Promise<string | undefined> {
    const dir = path.join(this.dataDir, 'releases', app);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const record = await readFile(path.join(dir, name, INSTALL_RECORD), 'utf8').then((t) => JSON.parse(t) as { key?: unknown }, () => undefined);
      if (record?.key === key) return path.join(dir, name);
    }
    return undefined;
  }

  /**
   * Retention on the host, as the service does it: the newest `keep` releases of the app (by unpack
   * time) stay, the served one always does, and so does every directory in `inUse` (asked only when
   * something is over `keep`: the directories the workers' live code came from). Called between
   * commands, so never under a prepare.
   */
  async prune(app: string, keep: number, inUse: () => Promise<ReadonlySet<string>> = async () => new Set()): Promise<string[]> {
    const dir = path.join(this.dataDir, 'releases', app);
    const names = await readdir(dir).catch(() => [] as string[]);
    const dated = await Promise.all(names.map(async (name) => ({ name, at: (await stat(path.join(dir, name))).mtimeMs })));
    const served = this.served.get(app)?.version;
    const over = dated.sort((a, b) => b.at - a.at).slice(keep).filter((r) => r.name !== served).map((r) => r.name);
    const used = over.length > 0 ? await inUse() : new Set<string>();
    const doomed: string[] = [];
    for (const name of over) {
      const release = path.join(dir, name);
      if (!used.has(await realpath(release).catch(() => release))) doomed.push(name);
    }
    for (const name of doomed) await rm(path.join(dir, name), { recursive: true, force: true });
    return doomed;
  }
}
