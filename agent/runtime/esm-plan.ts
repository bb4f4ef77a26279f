import type { AppManifest } from '../messages.js';
import type { EsmModules } from './esm-modules.js';
import type { ModuleGraph } from './graph.js';

/** What `requiredEsmDeadEnd` reads of a CommonJS app. */
export interface RequiredEsm {
  readonly requiredEsm: ReadonlySet<string>;
  readonly graph: ModuleGraph;
}

/** How much retired module source and how many retired versions a worker holds before it reloads. */
export interface EsmRetiredLimit {
  bytes: number;
  versions: number;
}

/**
 * The defaults: 64 MiB of retired source and 10,000 retired versions. Retired versions hold about
 * twice to three times their source in V8's heap (compiled code, the module record, the source
 * string kept for `Function.prototype.toString`), so the default keeps a worker's extra heap under
 * ~200 MB; a 200-module app whose typical update re-evaluates a few dozen modules reloads after a
 * few hundred hot updates.
 */
export const DEFAULT_ESM_RETIRED_LIMIT: EsmRetiredLimit = { bytes: 64 * 1024 * 1024, versions: 10_000 };

export type EsmDeadEnd = { reason: string; chain: string[] };

/**
 * What only ES module apps refuse after propagation: a change under a CommonJS `require` of an ES
 * module (Node caches `require(esm)` by path, so no new version can be required), and an update
 * that would take the retired versions past the limit — ES module records are never freed, so
 * those workers start afresh on the reload path instead.
 */
export function esmDeadEnd(
  esm: EsmModules, graph: ModuleGraph, disposed: readonly string[], manifest: AppManifest, override: Partial<EsmRetiredLimit> | undefined,
): EsmDeadEnd | undefined {
  for (const rel of disposed) {
    if (esm.isRequired(rel)) {
      const parent = [...graph.parentsOf(rel)].find((p) => !esm.records.has(p));
      return { reason: `Aborted because ${rel} is loaded by require(esm)`, chain: parent ? [rel, parent] : [rel] };
    }
  }
  const limit = { ...DEFAULT_ESM_RETIRED_LIMIT, ...manifest.esmRetiredLimit, ...override };
  let bytes = esm.retired.bytes;
  let versions = esm.retired.versions;
  for (const rel of disposed) {
    if (!esm.isLive(rel)) continue;
    bytes += esm.bytesOf(rel);
    versions += 1;
  }
  if (bytes > limit.bytes || versions > limit.versions) {
    return { reason: 'esm-retired-limit', chain: [] };
  }
  return undefined;
}

/**
 * A CommonJS app that loaded ES modules by `require(esm)` runs without the ES module hooks: Node
 * keeps those modules by URL (a new version could only come from another release's path, and is
 * never freed), and what they import is invisible to the runtime. So an update that would dispose
 * one of them, or that changes code the runtime has not seen loaded (an ES module may import it),
 * takes the reload path.
 */
export function requiredEsmDeadEnd(app: RequiredEsm, disposed: readonly string[], unloadedCode: readonly string[]): EsmDeadEnd | undefined {
  if (app.requiredEsm.size === 0) return undefined;
  for (const rel of disposed) {
    if (!app.requiredEsm.has(rel)) continue;
    const parent = [...app.graph.parentsOf(rel)][0];
    return { reason: `Aborted because ${rel} is loaded by require(esm)`, chain: parent === undefined ? [rel] : [rel, parent] };
  }
  const [unseen] = unloadedCode;
  if (unseen === undefined) return undefined;
  const by = [...app.requiredEsm].sort().join(', ');
  return { reason: `Aborted because ${unseen} may be imported by an ES module loaded by require(esm) (${by})`, chain: [unseen] };
}
