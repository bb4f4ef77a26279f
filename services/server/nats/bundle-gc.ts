import type { ObjectStore } from '@nats-io/obj';
import { nodeModulesObjectName, objectName } from '../../../agent/nats/bundles.js';
import type { ReleaseStore } from '../release-store.js';

/** The object names an app's stored releases still need: each bundle, and each installed node_modules. */
export type RetainedObjects = (app: string) => Promise<Set<string>>;

export function retainedObjects(store: ReleaseStore): RetainedObjects {
  return async (app) => {
    const names = new Set<string>();
    for (const release of await store.list(app)) {
      names.add(objectName(app, release.sha256));
      if (release.install) names.add(nodeModulesObjectName(app, release.install.key));
    }
    return names;
  };
}

/**
 * After the service pruned an app's releases: the object store's bundles and node_modules archives
 * of that app that no stored release names are deleted. Only objects named the way those two are
 * (`<app>/<sha256>.tgz`, `<app>/node_modules/<key>.tgz`) are considered, so objects others keep in
 * the bucket under the app's name are left alone. Returns the names deleted.
 */
export async function collectBundles(bundles: ObjectStore, app: string, retained: Set<string>): Promise<string[]> {
  const ours = new RegExp(`^${app}/(?:[0-9a-f]{64}|node_modules/[^/]+)\\.tgz$`);
  const doomed = (await bundles.list()).map((info) => info.name).filter((name) => ours.test(name) && !retained.has(name));
  for (const name of doomed) await bundles.delete(name);
  return doomed;
}
