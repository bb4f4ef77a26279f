import type { AppManifest } from '../../../agent/messages.js';
import { deltaObjectName, objectName, publishBundle } from '../../../agent/nats/bundles.js';
import type { ReleaseDelta, ReleaseInstall, ReleaseRef } from '../../../agent/nats/protocol.js';
import type { ClusterResources } from '../../../agent/nats/resources.js';
import { natsStep } from './host-commands.js';

/** What the service knows of a release: its bundle on disk, its sha256, its manifest, its installed node_modules' archive. */
export type ReleaseLookup = (app: string, version: string) => Promise<{
  file: string; sha256: string; manifest: AppManifest; install?: ReleaseInstall & { file: string };
  /** The delta the release was pushed as (its file, and what hosts check it against). */
  delta?: Omit<ReleaseDelta, 'object'> & { file: string };
}>;

/** The release's bundle into the object store (once per sha256), and what hosts need to find it. */
export async function publishRelease(resources: ClusterResources, lookup: ReleaseLookup, app: string, version: string,
  kind: ReleaseRef['kind']): Promise<ReleaseRef> {
  const { file, sha256, manifest, install, delta } = await lookup(app, version);
  let ref: ReleaseRef = { app, version, sha256, object: objectName(app, sha256), manifest, kind };
  await natsStep(publishBundle(resources.bundles, ref, file));
  if (delta) {
    // Hosts with the base pull these few bytes instead of the bundle.
    const { file: deltaFile, ...wire } = delta;
    ref = { ...ref, delta: { ...wire, object: deltaObjectName(app, delta.sha256) } };
    await natsStep(publishBundle(resources.bundles, ref.delta as ReleaseDelta, deltaFile));
  }
  if (!install) return ref;
  // The installed node_modules, once per install key: hosts take them instead of installing.
  const { file: archive, ...wire } = install;
  await natsStep(publishBundle(resources.bundles, wire, archive));
  return { ...ref, install: wire };
}
