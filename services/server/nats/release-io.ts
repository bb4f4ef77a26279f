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
import type { ReleaseLookup } from './cluster-agent.js';

/**
 * The guarded extraction the service runs at upload, for host agents (the same checks on
 * every host). `hotdeploy agent` injects it into the agent side, which may not import services/.
 * A release whose node_modules the service installed gets them from the archive it was sent
 * (unpacked with the same checks) or as links from a release of the host with the same install.
 */
export function releaseUnpacker(limits: ExtractLimits): ReleaseUnpacker {
  return async (bundleFile, dest, deps) => {
    // As ReleaseStore.ingest: the file hashes are computed while unpacking.
    const { root, manifest } = await extractBundle(bundleFile, dest, limits);
    await readManifest(root);
    const tree = deps && (await placeNodeModules(root, `${dest}-${NODE_MODULES}`, deps, limits));
    await writeFileHashes(root, tree ? withTree(manifest, tree) : manifest);
    if (deps) await writeInstallRecord(root, deps.install);
    return { root };
  };
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

/** Where the cluster agent finds a release's bundle, sha256, manifest, and the archive of its installed node_modules. */
export function releaseLookup(store: ReleaseStore): ReleaseLookup {
  return async (app, version) => {
    const meta = await store.require(app, version);
    const found = { file: store.bundleFile(app, meta.sha256), sha256: meta.sha256, manifest: meta.manifest };
    if (!meta.install) return found;
    const { key, node } = meta.install;
    const archive = await nodeModulesArchive(store.appDir(app), store.releaseDir(app, version), key);
    return { ...found, install: { key, node, object: nodeModulesObjectName(app, key), sha256: archive.sha256, file: archive.file } };
  };
}
