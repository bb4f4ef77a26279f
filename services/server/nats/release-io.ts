import { lstatSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '../../../agent/manifest.js';
import { nodeModulesObjectName } from '../../../agent/nats/bundles.js';
import type { InstalledDependencies, ReleaseUnpacker } from '../../../agent/nats/host-releases.js';
import { DeployError } from '../errors.js';
import { writeFileHashes } from '../file-hashes.js';
import { linkInstalled, writeInstallRecord } from '../install/dependencies.js';
import { nodeModulesArchive } from '../install/node-modules-archive.js';
import { NODE_MODULES, underNodeModules, withTree, type TreeIndex } from '../install/tree.js';
import type { ReleaseStore } from '../release-store.js';
import { extractBundle, type ExtractLimits } from '../unpack/extract.js';
import { assembleDelta, type DeltaBase } from '../unpack/delta.js';
import { readReleaseSources } from '../source-manifest.js';
import type { ReleaseLookup } from './release-publish.js';

/**
 * The guarded extraction the service runs at upload, for host agents (the same checks on
 * every host). `hotdeploy agent` injects it into the agent side, which may not import services/.
 * A release whose node_modules the service installed gets them from the archive it was sent
 * (unpacked with the same checks) or as links from a release of the host with the same install.
 */
export function releaseUnpacker(limits: ExtractLimits): ReleaseUnpacker {
  return async (bundleFile, dest, deps, delta) => {
    // As ReleaseStore.ingest: the file hashes are computed while unpacking.
    const extracted = await extractBundle(bundleFile, dest, limits, { delta: delta !== undefined });
    const { root, manifest } = delta ? await assembleDelta(extracted, await deltaBase(delta.baseDir), delta.manifestSha256, limits) : extracted;
    await readManifest(root);
    const tree = deps && (await placeNodeModules(root, `${dest}-${NODE_MODULES}`, deps, limits));
    await writeFileHashes(root, tree ? withTree(manifest, tree) : manifest);
    if (deps) await writeInstallRecord(root, deps.install);
    return { root };
  };
}

/**
 * A release folder of this host as a delta's base: its sources and their bytes. The sizes are read
 * with synchronous calls: a few microseconds each, where a promise per file costs the agent's
 * event loop several times that.
 */
async function deltaBase(dir: string): Promise<DeltaBase> {
  const read = await readReleaseSources(dir);
  if (!read) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_FOUND', `${dir} has no readable file manifest`);
  let bytes = 0;
  for (const rel of Object.keys(read.sources.files)) {
    const size = lstatSync(path.join(dir, rel), { throwIfNoEntry: false })?.size;
    if (size === undefined) throw new DeployError('DEPLOY_ERR_DELTA_BASE_NOT_FOUND', `${dir} lacks ${rel}`);
    bytes += size;
  }
  return { dir, sources: read.sources, bytes };
}

async function placeNodeModules(root: string, scratch: string, deps: InstalledDependencies, limits: ExtractLimits): Promise<TreeIndex> {
  if ('release' in deps.from) {
    const linked = await linkInstalled(deps.from.release, root);
    if (!linked) throw new DeployError('DEPLOY_ERR_INSTALL', `the node_modules of ${deps.from.release} could not be linked`);
    return linked;
  }
  const extracted = await extractBundle(deps.from.archive, scratch, limits);
  if (path.basename(extracted.root) !== NODE_MODULES) {
    throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `the node_modules archive ${deps.install.object} has no single node_modules/ folder`);
  }
  await rename(extracted.root, path.join(root, NODE_MODULES));
  return underNodeModules(extracted.manifest);
}

/**
 * Where the cluster agent finds a release's full bundle (made from its files when it came as a
 * delta), sha256, manifest, the delta it came as, and the archive of its installed node_modules.
 */
export function releaseLookup(store: ReleaseStore): ReleaseLookup {
  return async (app, version) => {
    const meta = await store.require(app, version);
    const full = await store.fullBundle(app, version);
    const delta = meta.delta && meta.manifestSha256
      ? { delta: { base: meta.delta.base, file: store.uploadFile(meta), sha256: meta.sha256, manifestSha256: meta.manifestSha256 } }
      : {};
    const found = { file: full.file, sha256: full.sha256, manifest: meta.manifest, ...delta };
    if (!meta.install) return found;
    const { key, node } = meta.install;
    const archive = await nodeModulesArchive(store.appDir(app), store.releaseDir(app, version), key);
    return { ...found, install: { key, node, object: nodeModulesObjectName(app, key), sha256: archive.sha256, file: archive.file } };
  };
}
