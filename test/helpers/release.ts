import { createRequire } from 'node:module';
import { symlink } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTree } from './tmp.js';

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
