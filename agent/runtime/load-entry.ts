import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { AppState } from './app-state.js';
import { loader } from './cjs.js';
import type { HostContext } from './entry-shapes.js';
import { fromRel } from './registry.js';

/**
 * Evaluates an app's entry. CommonJS through `Module._load` with no parent, so no module outside
 * the app ever lists it in `children`; `asMain` makes it `require.main` (process mode in a worker,
 * where apps test `require.main === module` before listening). ESM through `import()`.
 */
export async function loadEntry(dir: string, entry: string, esm: boolean, asMain: boolean): Promise<unknown> {
  const file = fromRel(dir, entry);
  if (esm) return import(pathToFileURL(file).href);
  return loader._load(file, null, asMain);
}

/**
 * How to host the app's entry as it is now. A package the host requires for the app (a fastify-cli
 * app's fastify) is required through the entry module, so it is the entry's dependency in the
 * app's graph: an upgrade of it reaches the entry, which the host evaluates again.
 */
export function hostContext(app: AppState): HostContext {
  const { manifest } = app;
  const entryModule = app.records.get(manifest.entry)?.module;
  return {
    entry: manifest.entry,
    export: manifest.export ?? 'auto',
    fastify: manifest.fastify,
    requireFromApp: entryModule ? (id) => entryModule.require(id) : createRequire(fromRel(app.dir, manifest.entry)),
    env: process.env,
  };
}
