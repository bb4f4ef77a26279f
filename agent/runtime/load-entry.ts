import { pathToFileURL } from 'node:url';
import { loader } from './cjs.js';
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
