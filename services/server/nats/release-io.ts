import { readManifest } from '../../../agent/manifest.js';
import type { ReleaseUnpacker } from '../../../agent/nats/host-releases.js';
import { extractBundle, type ExtractLimits } from '../unpack/extract.js';
import { writeFileHashes } from '../file-hashes.js';
import type { ReleaseStore } from '../release-store.js';
import type { ReleaseLookup } from './cluster-agent.js';

/**
 * The guarded extraction the service runs at upload, for host agents (issue 7: the same checks on
 * every host). `hotdeploy agent` injects it into the agent side, which may not import services/.
 */
export function releaseUnpacker(limits: ExtractLimits): ReleaseUnpacker {
  return async (bundleFile, dest) => {
    // As ReleaseStore.ingest: the file hashes are computed while unpacking.
    const { root, manifest } = await extractBundle(bundleFile, dest, limits);
    await readManifest(root);
    await writeFileHashes(root, manifest);
    return { root };
  };
}

/** Where the cluster agent finds a release's bundle, sha256 and manifest. */
export function releaseLookup(store: ReleaseStore): ReleaseLookup {
  return async (app, version) => {
    const meta = await store.require(app, version);
    return { file: store.bundleFile(app, meta.sha256), sha256: meta.sha256, manifest: meta.manifest };
  };
}
