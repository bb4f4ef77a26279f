import { fs } from './builtins.js';
import { cacheFile, writeAtomic } from './cache-files.js';
import type { Client } from './client.js';
import { segment } from './command.js';
import { CliError, ServerError } from './errors.js';
import { VERSION_PATTERN } from '../server/schemas.js';
import type { SourceManifest } from '../server/source-manifest.js';

/** The current release's files as the service reported them (`GET /v1/apps/:app/files`). */
export interface ServerFiles extends SourceManifest {
  version: string;
  manifestSha256: string;
}

/** What a push needs of the last answer before it asks again: the version and the digest (the ETag). */
interface Head {
  version: string;
  manifestSha256: string;
}

/**
 * The app's current release's files, or undefined when it has none (or the server has no such
 * endpoint, or the token may not read them). The last answer is kept (ETag): unchanged, the server
 * answers 304 with no body. The cache's first line (version and digest) is all the request needs;
 * the file list below it, 300 KB for an app with bundled dependencies, is parsed only on a 304,
 * once the request is on its way.
 */
export async function currentFiles(client: Client, app: string, env: NodeJS.ProcessEnv): Promise<ServerFiles | undefined> {
  const file = releaseCache(client, app, env);
  // Read at once: the request leaves in the same turn as the call, ahead of the local work.
  const cached = readCache(file);
  try {
    const known = cached && (await ask(client, app, cached.head));
    if (known?.statusCode === 304) {
      const files = serverFiles({ ...parseList(cached?.list), ...known.head });
      if (files) return files;
    }
    const res = known?.statusCode === 200 ? known : await ask(client, app, undefined);
    const answer = serverFiles(res.body);
    if (!answer) throw new CliError('CLI_ERR_BAD_RESPONSE', `GET /v1/apps/${app}/files answered no file list of a release`);
    await writeAtomic(file, cacheText(answer));
    return answer;
  } catch (err) {
    // No current release, a server without deltas, or a token that may not read: a full bundle goes.
    if (err instanceof ServerError && (err.statusCode === 404 || err.statusCode === 403)) return undefined;
    throw err;
  }
}

/** What the server now has as current, remembered so the next push's manifest exchange is a 304. */
export async function rememberCurrent(client: Client, app: string, current: ServerFiles, env: NodeJS.ProcessEnv): Promise<void> {
  await writeAtomic(releaseCache(client, app, env), cacheText(current));
}

/** `GET …/files`, conditional on `head`'s digest when given; a 304 names the release it is current in. */
async function ask(client: Client, app: string, head: Head | undefined): Promise<{ statusCode: number; body: unknown; head: Head | undefined }> {
  const res = await client.request<unknown>('GET', `/v1/apps/${segment(app)}/files`, {
    headers: head ? { 'if-none-match': `"${head.manifestSha256}"` } : {},
  });
  const named = res.headers['x-hotdeploy-release'];
  return { statusCode: res.statusCode, body: res.body, head: head && { ...head, version: typeof named === 'string' ? named : head.version } };
}

function readCache(file: string): { head: Head; list: string } | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const end = text.indexOf('\n');
    const head = JSON.parse(text.slice(0, end)) as Partial<Head>;
    if (typeof head.version !== 'string' || typeof head.manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(head.manifestSha256)) return undefined;
    return { head: { version: head.version, manifestSha256: head.manifestSha256 }, list: text.slice(end + 1) };
  } catch {
    return undefined;
  }
}

function parseList(text: string | undefined): object {
  try {
    const value = JSON.parse(text ?? '') as unknown;
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {};
  }
}

function cacheText(files: ServerFiles): string {
  return `${JSON.stringify({ version: files.version, manifestSha256: files.manifestSha256 })}\n${JSON.stringify({ files: files.files, links: files.links })}`;
}

/**
 * `value` when it is a file list the push can use: the version and digest it sends back in headers
 * (and keeps for the next push's If-None-Match) well formed, the files and links of the right types.
 */
function serverFiles(value: unknown): ServerFiles | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, manifestSha256, files, links } = value as Record<string, unknown>;
  if (typeof version !== 'string' || !new RegExp(VERSION_PATTERN).test(version)) return undefined;
  if (typeof manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(manifestSha256)) return undefined;
  if (typeof files !== 'object' || files === null || Array.isArray(files) || !Object.values(files).every((h) => typeof h === 'string')) return undefined;
  if (!Array.isArray(links) || !links.every((l) => typeof l === 'string')) return undefined;
  return { version, manifestSha256, files: files as Record<string, string>, links: links as string[] };
}

function releaseCache(client: Client, app: string, env: NodeJS.ProcessEnv): string {
  return cacheFile(env, 'releases', `${client.server.href} ${app}`);
}
