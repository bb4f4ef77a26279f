import { mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ObjectStore } from '@nats-io/obj';
import { pullBundle } from './bundles.js';
import type { ReleaseRef } from './protocol.js';

/**
 * The guarded extraction of the deploy service (limits, link checks, file hashes), injected by the
 * CLI because `agent/` never imports `services/` (DESIGN.md). It unpacks `bundleFile` into the fresh
 * folder `dest` and returns the app's root inside it; it throws (a DEPLOY_ERR_* code) on bad input.
 */
export type ReleaseUnpacker = (bundleFile: string, dest: string) => Promise<{ root: string }>;

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

  constructor(private readonly dataDir: string, private readonly bundles: ObjectStore, private readonly unpack: ReleaseUnpacker) {
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

  /** Pulls (sha256-checked) and unpacks the release unless this host already has it. */
  async ensure(ref: ReleaseRef): Promise<string> {
    const target = this.releaseDir(ref.app, ref.version);
    if (await stat(target).then(() => true, () => false)) return target;
    const staging = await mkdtemp(path.join(this.tmpDir, `${ref.app}-${ref.version}-`));
    try {
      const bundle = path.join(staging, 'bundle.tgz');
      await pullBundle(this.bundles, ref, bundle);
      const { root } = await this.unpack(bundle, path.join(staging, 'raw'));
      await mkdir(path.dirname(target), { recursive: true });
      await rename(root, target);
      return target;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
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
