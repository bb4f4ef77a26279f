import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { manifestDigest, type SourceManifest } from '../../services/server/source-manifest.js';
import { rawTgz, type RawEntry } from './bundles.js';
import { get, TOKENS } from './server.js';

export interface DeltaSpec {
  base: string;
  /** Files written by the delta (added or changed): path → content. */
  changed?: Record<string, string>;
  removed?: string[];
  /** Entries beside the changed files (hostile ones). */
  extra?: RawEntry[];
  /** The digest to declare instead of the one the base plus the changes make. */
  declare?: string;
  token?: string;
  query?: string;
  /** The whole body instead of a .tgz of the above (a stream: sent as it is written). */
  body?: Buffer | Readable;
  headers?: Record<string, string>;
}

/** The current release's sources as the service reports them. */
export async function currentSources(app: FastifyInstance, name: string): Promise<SourceManifest & { version: string }> {
  const res = await get(app, `/v1/apps/${name}/files`);
  if (res.statusCode !== 200) throw new Error(`GET files: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** The digest the base's sources plus `spec`'s changes make (what an honest client declares). */
export function expectedDigest(base: SourceManifest, spec: Pick<DeltaSpec, 'changed' | 'removed'>): string {
  const files = { ...base.files };
  for (const rel of spec.removed ?? []) delete files[rel];
  for (const [rel, body] of Object.entries(spec.changed ?? {})) files[rel] = createHash('sha256').update(body).digest('hex');
  return manifestDigest({ files, links: base.links.filter((l) => !(spec.removed ?? []).includes(l)) });
}

/** `PUT …/releases/:version/delta` with a .tgz of the changes (no top-level folder) and the removal list. */
export async function uploadDelta(app: FastifyInstance, name: string, version: string, spec: DeltaSpec): Promise<LightMyRequestResponse> {
  const declared = spec.declare ?? expectedDigest(await currentSources(app, name), spec);
  const entries: RawEntry[] = Object.entries(spec.changed ?? {}).map(([path, body]) => ({ path, body }));
  if (spec.removed?.length) entries.push({ path: '.hotdeploy/removed.json', body: JSON.stringify(spec.removed) });
  const body = spec.body ?? rawTgz([...entries, ...(spec.extra ?? [])]);
  return app.inject({
    method: 'PUT', url: `/v1/apps/${name}/releases/${version}/delta${spec.query ?? ''}`, payload: body,
    headers: {
      'content-type': 'application/gzip', authorization: `Bearer ${spec.token ?? TOKENS.admin}`,
      'x-hotdeploy-base': spec.base, 'x-hotdeploy-manifest-sha256': declared, ...spec.headers,
    },
  });
}
