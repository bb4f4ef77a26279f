import { createReadStream } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { canaryAsk, resolveCanary, type CanaryAsk } from '../canary.js';
import type { ServiceContext } from '../context.js';
import type { Deployment } from '../deployments.js';
import { DeployError, isDeployError } from '../errors.js';
import { RESERVED_DIR } from '../file-hashes.js';
import { readJsonFile } from '../fs-atomic.js';
import type { IngestResult } from '../release-store.js';
import { appParams, bundleHeaders, choicesOf, deployChoices, releaseParams, VERSION_PATTERN, type AppParams, type DeployChoices, type ReleaseParams } from '../schemas.js';
import { manifestDigest, readReleaseSources, readReleaseSourcesNow } from '../source-manifest.js';

interface UploadQuery extends DeployChoices { activate: boolean; wait: boolean; canary?: string; canaryWatchMs?: string }

/** Bundles arrive as a raw stream, never buffered whole (fastify's bodyLimit does not apply to it). */
export const BUNDLE_CONTENT_TYPES = ['application/gzip', 'application/x-gzip', 'application/octet-stream'];

export function releaseRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.addContentTypeParser(BUNDLE_CONTENT_TYPES, (_request, payload, done) => done(null, payload));

  app.put<{ Params: ReleaseParams; Querystring: UploadQuery; Headers: { 'x-bundle-sha256'?: string } }>(
    '/v1/apps/:app/releases/:version',
    {
      config: { action: 'push' },
      schema: {
        params: releaseParams,
        querystring: uploadQuery,
        headers: bundleHeaders,
      },
    },
    async (request, reply) => {
      const { app: name, version } = request.params;
      const by = request.principal?.name ?? 'unknown';
      // Refused before a byte of the bundle is read: nothing stored, nothing deployed.
      const canary = canaryAsk(request.query);
      const track = ctx.metrics.upload(name);
      track.unpacking();
      const { release, created } = await receiveUpload(ctx, request.body, request.headers, name, version, by).catch(async (err: unknown) => {
        track.done(undefined);
        const code = isDeployError(err) ? err.code : 'DEPLOY_ERR_INTERNAL';
        await ctx.audit.append({ who: by, what: 'upload', app: name, version, outcome: 'rejected', code });
        throw err;
      });
      track.done({ bytes: release.bundleBytes, created });
      return answerUpload(ctx, request, reply, { release, created }, by, canary);
    },
  );

  app.put<{ Params: ReleaseParams; Querystring: UploadQuery; Headers: DeltaHeaders }>(
    '/v1/apps/:app/releases/:version/delta',
    { config: { action: 'push' }, schema: { params: releaseParams, querystring: uploadQuery, headers: deltaHeaders } },
    async (request, reply) => {
      const { app: name, version } = request.params;
      const by = request.principal?.name ?? 'unknown';
      // Refused before a byte of the delta is read: nothing stored, nothing deployed.
      const canary = canaryAsk(request.query);
      const { stream, expectedSha256 } = bundleBody(ctx, request.body, request.headers);
      const base = request.headers['x-hotdeploy-base'];
      const manifestSha256 = request.headers['x-hotdeploy-manifest-sha256'].toLowerCase();
      const result = await ctx.store.ingestDelta(name, version, stream, { base, manifestSha256, expectedSha256, by })
        .catch(async (err: unknown) => {
          const code = isDeployError(err) ? err.code : 'DEPLOY_ERR_INTERNAL';
          await ctx.audit.append({ who: by, what: 'upload', app: name, version, outcome: 'rejected', code }).catch(() => undefined);
          throw err;
        });
      return answerUpload(ctx, request, reply, result, by, canary);
    },
  );

  // The current release's own files (without an installed node_modules), for a client that diffs
  // against them to send a delta: `ETag` is their digest, so an unchanged answer is a 304.
  app.get<{ Params: AppParams }>('/v1/apps/:app/files', { config: { action: 'read', orAction: 'push' }, schema: { params: appParams } },
    async (request, reply) => {
      const { app: name } = request.params;
      // Read with synchronous calls: the client's push waits for this answer before it diffs.
      const { current } = ctx.store.pointersNow(name);
      if (current === null) throw new DeployError('DEPLOY_ERR_APP_NOT_FOUND', `${name} has no current release`);
      const read = readReleaseSourcesNow(ctx.store.releaseDir(name, current));
      if (!read) throw new DeployError('DEPLOY_ERR_RELEASE_NOT_FOUND', `${name}@${current} has no readable file manifest`);
      const digest = manifestDigest(read.sources);
      reply.header('etag', `"${digest}"`).header('x-hotdeploy-release', current);
      if (request.headers['if-none-match'] === `"${digest}"`) return reply.status(304).send();
      return { app: name, version: current, manifestSha256: digest, ...read.sources };
    });

  app.get<{ Params: AppParams }>('/v1/apps/:app/releases', { config: { action: 'read' }, schema: { params: appParams } }, async (request) => {
    const { app: name } = request.params;
    // Retention runs after a deployment's answer: what it removes is gone from the listing asked after that answer.
    await ctx.deployments.retained(name);
    const [releases, pointers] = await Promise.all([ctx.store.list(name), ctx.store.pointers(name)]);
    if (releases.length === 0) throw new DeployError('DEPLOY_ERR_APP_NOT_FOUND', name);
    return { app: name, current: pointers.current, previous: pointers.previous, releases };
  });

  app.get<{ Params: ReleaseParams }>('/v1/apps/:app/releases/:version', { config: { action: 'read' }, schema: { params: releaseParams } },
    async (request) => {
      await ctx.deployments.retained(request.params.app);
      return ctx.store.require(request.params.app, request.params.version);
    });

  // The per-release file-hash manifest, for clients comparing releases (`hotdeploy plan` dry-runs in the workers instead: POST …/plan).
  app.get<{ Params: ReleaseParams }>('/v1/apps/:app/releases/:version/files',
    { config: { action: 'read', orAction: 'push' }, schema: { params: releaseParams } },
    async (request, reply) => {
      const { app: name, version } = request.params;
      await ctx.store.require(name, version);
      const read = await readReleaseSources(ctx.store.releaseDir(name, version));
      if (!read) throw new DeployError('DEPLOY_ERR_RELEASE_NOT_FOUND', `${name}@${version} has no readable file manifest`);
      // Releases are immutable: the bytes of files.json never change under this ETag.
      reply.header('etag', `"${read.hashes.sha256}"`);
      if (request.headers['if-none-match'] === `"${read.hashes.sha256}"`) return reply.status(304).send();
      return readJsonFile(path.join(ctx.store.releaseDir(name, version), RESERVED_DIR, 'files.json'));
    });

  // Agents on other hosts download the release as a full bundle (and check it by its sha256): the
  // uploaded one, or for a release built from a delta one made from its files.
  app.get<{ Params: ReleaseParams }>('/v1/apps/:app/releases/:version/bundle', { config: { action: 'agent' }, schema: { params: releaseParams } },
    async (request, reply) => {
      const bundle = await ctx.store.fullBundle(request.params.app, request.params.version);
      return reply
        .header('content-type', 'application/gzip')
        .header('content-length', bundle.bytes)
        .header('x-bundle-sha256', bundle.sha256)
        .send(createReadStream(bundle.file));
    });
}

const uploadQuery = {
  type: 'object',
  properties: {
    activate: { type: 'boolean', default: true }, wait: { type: 'boolean', default: true }, ...deployChoices,
    canary: { type: 'string', maxLength: 16 }, canaryWatchMs: { type: 'string', maxLength: 16 },
  },
} as const;

/** A delta's base release, and the digest of the file manifest the base plus the delta must make. */
interface DeltaHeaders { 'x-hotdeploy-base': string; 'x-hotdeploy-manifest-sha256': string; 'x-bundle-sha256'?: string }

const deltaHeaders = {
  type: 'object',
  required: ['x-hotdeploy-base', 'x-hotdeploy-manifest-sha256'],
  properties: {
    ...bundleHeaders.properties,
    'x-hotdeploy-base': { type: 'string', pattern: VERSION_PATTERN },
    'x-hotdeploy-manifest-sha256': { type: 'string', pattern: '^[A-Fa-f0-9]{64}$' },
  },
} as const;

/** A stored upload (bundle or delta): audited, logged, deployed unless the query says otherwise. */
async function answerUpload(ctx: ServiceContext, request: FastifyRequest<{ Params: ReleaseParams; Querystring: UploadQuery }>, reply: FastifyReply,
  { release, created }: IngestResult, by: string, canary: CanaryAsk): Promise<FastifyReply> {
  const { app: name, version } = request.params;
  await ctx.audit.append({ who: by, what: 'upload', app: name, version, sha256: release.sha256, outcome: created ? 'created' : 'exists' });
  request.log.info({ app: name, version, sha256: release.sha256, created, ...(release.delta ? { base: release.delta.base } : {}) },
    created ? 'release stored' : 'release already stored');
  const { deployment, statusCode } = await deployUpload(ctx, release, created, ctx.store.pointersNow(name).current, by, request.query, canary);
  return reply.status(statusCode).send({ release, created, deployment });
}

async function receiveUpload(ctx: ServiceContext, body: unknown, headers: IncomingHttpHeaders, app: string, version: string, by: string): Promise<IngestResult> {
  const { stream, expectedSha256 } = bundleBody(ctx, body, headers);
  return ctx.store.ingest(app, version, stream, { expectedSha256, by });
}

/** The checks every bundle body gets before a byte is read (uploads and dry runs alike). */
export function bundleBody(ctx: ServiceContext, body: unknown, headers: IncomingHttpHeaders): { stream: Readable; expectedSha256: string | undefined } {
  const declared = Number(headers['content-length'] ?? 0);
  if (declared > ctx.options.maxBundleBytes) throw new DeployError('DEPLOY_ERR_BUNDLE_TOO_LARGE', `Content-Length ${declared}`);
  if (body === undefined) throw new DeployError('DEPLOY_ERR_EMPTY_BUNDLE');
  // fastify's own parsers (JSON, text) hand over a parsed value, not the stream.
  if (typeof (body as Partial<Readable>).pipe !== 'function') {
    throw new DeployError('DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE', String(headers['content-type']));
  }
  const sha = headers['x-bundle-sha256'];
  return { stream: body as Readable, expectedSha256: typeof sha === 'string' ? sha.toLowerCase() : undefined };
}

/**
 * Idempotent upload: the same bytes again deploy only when that version is not already current.
 * 201 new release, 200 known release, 202 when the caller does not wait for the deployment.
 * `current`: the app's current release, read once the upload was stored.
 */
async function deployUpload(ctx: ServiceContext, release: IngestResult['release'], created: boolean, current: string | null, by: string,
  query: UploadQuery, ask: CanaryAsk): Promise<{ deployment: Deployment | null; statusCode: number }> {
  const { app, version } = release;
  if (!query.activate || (!created && current === version)) {
    if (created) ctx.deployments.schedulePrune(app);
    return { deployment: null, statusCode: created ? 201 : 200 };
  }
  const canary = resolveCanary(ask, release.manifest);
  const { deployment, done } = await ctx.deployments.enqueue(app, version, 'push', by, { options: choicesOf(query), ...(canary ? { canary } : {}) });
  if (!query.wait) return { deployment, statusCode: 202 };
  return { deployment: await done, statusCode: created ? 201 : 200 };
}
