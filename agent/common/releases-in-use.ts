import type { WorkerState } from '../messages.js';

/**
 * The release directories the workers' live code came from (`WorkerState.releases`, each worker's
 * `HostedApp.releasesInUse()`): a module that did not change keeps its first release's `__dirname`,
 * and code that reads `views/` or `public/` through it needs that directory long after newer
 * releases came, so retention keeps these. Throws when a running worker did not answer, since then
 * nobody can tell which directory is safe to remove: retention waits for a later round.
 */
export function releasesInUse(workers: readonly WorkerState[]): Set<string> {
  const dirs = new Set<string>();
  for (const worker of workers) {
    if (worker.status !== 'online') continue;
    if (!worker.releases) throw new Error(`worker ${worker.host}#${worker.pmId} did not say which releases it uses; nothing pruned`);
    for (const dir of worker.releases) dirs.add(dir);
  }
  return dirs;
}
