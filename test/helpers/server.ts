import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildServer } from '../../services/server/build-server.js';
import type { ServerOptions, TokenConfig } from '../../services/server/options.js';
import { appFiles, makeBundle } from './bundles.js';
import { tempDir } from './tmp.js';

export const TOKENS = {
  admin: 'admin-token-0123456789',
  ci: 'ci-token-for-demo-only',
  reader: 'reader-token-everything',
  other: 'ci-token-for-other-app',
} as const;

export const TOKEN_CONFIG: TokenConfig[] = [
  { name: 'admin', token: TOKENS.admin },
  { name: 'ci', token: TOKENS.ci, apps: ['demo'], actions: ['push', 'read'] },
  { name: 'reader', token: TOKENS.reader, actions: ['read'] },
  { name: 'other', token: TOKENS.other, apps: ['other'], actions: ['push', 'activate', 'read'] },
];

export interface TestServer {
  app: FastifyInstance;
  dataDir: string;
  close: () => Promise<void>;
}

/** A real fastify instance (inject) over a fresh data directory. */
export async function testServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const { dir } = await tempDir('hotdeploy-server-');
  const app = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false, ...options });
  await app.ready();
  return { app, dataDir: dir, close: async () => { await app.close(); await rm(dir, { recursive: true, force: true, maxRetries: 5 }); } };
}

export interface UploadOptions {
  token?: string | null;
  contentType?: string;
  headers?: Record<string, string>;
  query?: string;
}

export function upload(app: FastifyInstance, name: string, version: string, body: Buffer | Readable, options: UploadOptions = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/gzip', ...options.headers };
  const token = options.token === undefined ? TOKENS.admin : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return app.inject({ method: 'PUT', url: `/v1/apps/${name}/releases/${version}${options.query ?? ''}`, headers, payload: body });
}

/** Uploads and activates a valid release; returns the response body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
export async function deployVersion(app: FastifyInstance, name: string, version: string): Promise<any> {
  const res = await upload(app, name, version, await makeBundle(appFiles(`${name}@${version}`)));
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

export function get(app: FastifyInstance, url: string, token: string = TOKENS.admin): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
}

export function post(app: FastifyInstance, url: string, body: unknown, token: string = TOKENS.admin): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: body as object });
}

/** Everything a bad request must leave untouched: pointers, the current link, metadata, every released file. */
export async function snapshotApp(dataDir: string, name: string): Promise<Record<string, string>> {
  const appDir = path.join(dataDir, 'apps', name);
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      const rel = path.relative(appDir, abs);
      if (entry.isSymbolicLink()) out[rel] = `-> ${await readlink(abs)}`;
      else if (entry.isDirectory()) await walk(abs);
      else out[rel] = `${(await lstat(abs)).mode.toString(8)} ${createHash('sha256').update(await readFile(abs)).digest('hex')}`;
    }
  };
  await walk(appDir);
  return out;
}

/**
 * Asserts a rejected request changed nothing: same snapshot, no staging leftovers, and the current
 * release still reported and still serving its files.
 */
export async function expectUnchanged(server: TestServer, name: string, before: Record<string, string>, version: string): Promise<void> {
  expect(await snapshotApp(server.dataDir, name)).toEqual(before);
  expect(await readdir(path.join(server.dataDir, 'tmp'))).toEqual([]);
  const res = await get(server.app, `/v1/apps/${name}`);
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ current: version });
  const entry = await readFile(path.join(server.dataDir, 'apps', name, 'current', 'index.js'), 'utf8');
  expect(entry).toContain(`${name}@${version}`);
}

/** A server with `demo@1.0.0` current, and its snapshot, for bad-input tests. */
export async function serverWithRelease(options: Partial<ServerOptions> = {}): Promise<{ server: TestServer; before: Record<string, string> }> {
  const server = await testServer(options);
  await deployVersion(server.app, 'demo', '1.0.0');
  return { server, before: await snapshotApp(server.dataDir, 'demo') };
}

/** A bad upload: the status and code it must get, and proof that nothing deployed changed. */
export async function expectRejected(server: TestServer, before: Record<string, string>, res: LightMyRequestResponse,
  statusCode: number, code: string): Promise<void> {
  expect(res.statusCode, res.body).toBe(statusCode);
  expect(res.json()).toEqual({ statusCode, code, message: expect.any(String) });
  await expectUnchanged(server, 'demo', before, '1.0.0');
}

/** Bytes the staging directory holds: an upload has started when this is above zero. */
export async function stagedBytes(dataDir: string): Promise<number> {
  let total = 0;
  for (const dir of await readdir(path.join(dataDir, 'tmp')).catch(() => [] as string[])) {
    total += await lstat(path.join(dataDir, 'tmp', dir, 'bundle.tgz')).then((s) => s.size, () => 0);
  }
  return total;
}
