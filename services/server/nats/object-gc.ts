import type { ObjectStore } from '@nats-io/obj';
import { deltaObjectName, nodeModulesObjectName, objectName } from '../../../agent/nats/bundles.js';
import type { ReleaseStore } from '../release-store.js';

/** The object names an app's stored releases still need (the cluster agent's `retained` option). */
export type RetainedObjects = (app: string) => Promise<Set<string>>;

/**
 * The bundle bucket's objects of `app` that a stored release still needs: its full bundle (the one
 * uploaded, or the one made for a delta-made release once it was published), its delta, and its
 * installed node_modules. Everything else of the app there named as those are belongs to pruned releases.
 */
export async function referencedObjects(store: ReleaseStore, app: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const meta of await store.list(app)) {
    const full = await store.storedFullBundle(meta);
    if (full) names.add(objectName(app, full.sha256));
    if (meta.delta) names.add(deltaObjectName(app, meta.sha256));
    if (meta.install) names.add(nodeModulesObjectName(app, meta.install.key));
  }
  return names;
}

export function retainedObjects(store: ReleaseStore): RetainedObjects {
  return (app) => referencedObjects(store, app);
}

/**
 * Deletes `app`'s objects that `referenced` does not name: a sweep of the whole app, so objects of
 * releases pruned while NATS was unreachable go at the next prune. Only objects named as the service
 * names them (`<app>/<sha256>.tgz`, `<app>/deltas/<sha256>.tgz`, `<app>/node_modules/<key>.tgz`) are
 * considered: others kept in the bucket under the app's name are left alone. Returns the names deleted.
 */
export async function collectObjects(bundles: ObjectStore, app: string, referenced: ReadonlySet<string>): Promise<string[]> {
  const ours = new RegExp(`^${escapeRegExp(app)}/(?:[0-9a-f]{64}|deltas/[0-9a-f]{64}|node_modules/[^/]+)\\.tgz$`);
  const doomed = (await bundles.list()).filter((info) => !info.deleted && ours.test(info.name) && !referenced.has(info.name)).map((i) => i.name);
  for (const name of doomed) await bundles.delete(name);
  return doomed;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
