import { createHash } from 'node:crypto';
import { readdir, readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, writeTree } from './tmp.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let counter = 0;

/**
 * Writes one release of a test app under `root` (a fresh directory each call, like the release
 * store). `linkNodeModules` symlinks the repository's node_modules in, so express/fastify resolve —
 * from outside the release, so the runtime never evicts them.
 */
export async function writeRelease(
  root: string,
  files: Record<string, string | object>,
  opts: { linkNodeModules?: boolean; name?: string } = {},
): Promise<string> {
  const dir = path.join(root, opts.name ?? `r${++counter}`);
  const tree: Record<string, string | object> = { 'package.json': { name: 'app', version: '1.0.0', main: 'index.js' }, ...files };
  await writeTree(dir, tree);
  if (opts.linkNodeModules) await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/** A real http server on port 0 around `handler`; `get` returns the body text. */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  url: string; get: (p?: string) => Promise<string>; close: () => Promise<void>;
}> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    get: async (p = '/') => {
      const res = await fetch(url + p);
      return `${res.status} ${await res.text()}`;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Node's CommonJS cache (the one the runtime works on). */
export const moduleCache = createRequire(import.meta.url).cache;

export function cachedUnder(dir: string): string[] {
  return Object.keys(moduleCache).filter((k) => k.startsWith(dir + path.sep)).sort();
}

/** Per-test cleanups (apps closed, servers closed, temp dirs removed), run in reverse by `afterEach`. */
export function cleanupStack(): {
  root: () => Promise<string>;
  defer: <T extends { close: () => Promise<void> }>(thing: T) => T;
  run: () => Promise<void>;
} {
  const stack: (() => Promise<void>)[] = [];
  return {
    root: async () => {
      const { dir, cleanup } = await tempDir();
      stack.push(cleanup);
      return dir;
    },
    defer: (thing) => {
      stack.push(() => thing.close());
      return thing;
    },
    run: async () => {
      for (const c of stack.splice(0).reverse()) await c();
    },
  };
}

/**
 * Writes `<dir>/.hotdeploy/files.json` the way the deploy service does (regular files, sha256, and
 * the symlinks, not followed), with `override` replacing chosen hashes (to prove which side of a
 * comparison the runtime trusts); `links: false` writes it as services before `links` did.
 */
export async function writeFilesManifest(dir: string, override: Record<string, string> = {}, opts: { links?: boolean } = {}): Promise<void> {
  const files: Record<string, string> = {};
  const links: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory() && childRel !== '.hotdeploy') await walk(childRel);
      else if (entry.isFile()) files[childRel] = createHash('sha256').update(await readFile(path.join(dir, childRel))).digest('hex');
      else if (entry.isSymbolicLink()) links.push(childRel);
    }
  };
  await walk('');
  const manifest = { version: 1, algorithm: 'sha256', files: { ...files, ...override } };
  await writeTree(dir, { '.hotdeploy/files.json': opts.links === false ? manifest : { ...manifest, links: links.sort() } });
}
