import type { AppManifest } from '../messages.js';
import type { EsmModules } from './esm-modules.js';
import type { ModuleGraph } from './graph.js';

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
