import http from 'node:http';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { HostedApp } from '../../agent/runtime/host-app.js';
import { writeTree } from '../helpers/tmp.js';

const run = promisify(execFile);

/** A tiny package built by a test: its files, and what it depends on (name → range). */
export interface TinyPackage {
  name: string;
  version: string;
  files: Record<string, string>;
  dependencies?: Record<string, string>;
  scripts?: Record<string, string>;
}

export interface Packed extends TinyPackage {
  integrity: string;
  tarball: string;
}

/**
 * Packs each package with `npm pack` and adds the tarballs to the npm cache `cacheDir` (`npm cache
 * add`): a lockfile that names them by integrity is then installed by `npm ci --offline` from that
 * cache alone, whatever host its `resolved` URLs name (pacote reads a cached tarball by its digest).
 */
export async function packIntoCache(work: string, cacheDir: string, packages: TinyPackage[]): Promise<Packed[]> {
  const packed: Packed[] = [];
  for (const pkg of packages) {
    const dir = path.join(work, `${pkg.name}-${pkg.version}`);
    await writeTree(dir, {
      'package.json': { name: pkg.name, version: pkg.version, main: 'index.js', dependencies: pkg.dependencies ?? {}, ...(pkg.scripts ? { scripts: pkg.scripts } : {}) },
      ...pkg.files,
    });
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: dir });
    const [result] = JSON.parse(stdout) as Array<{ filename: string; integrity: string }>;
    packed.push({ ...pkg, integrity: result!.integrity, tarball: path.join(work, result!.filename) });
  }
  await run('npm', ['cache', 'add', ...packed.map((p) => p.tarball), '--cache', cacheDir]);
  return packed;
}

/**
 * A lockfile (v3) for an app depending on `direct` (name → range), every package flat under
 * node_modules (one version per name), resolved from a registry host that does not exist.
 */
export function lockfileFor(app: { name: string; version: string }, direct: Record<string, string>, packages: Packed[]): object {
  const entries: Record<string, object> = { '': { name: app.name, version: app.version, dependencies: direct } };
  for (const p of packages) {
    entries[`node_modules/${p.name}`] = {
      version: p.version, resolved: `https://registry.invalid/${p.name}/-/${p.name}-${p.version}.tgz`, integrity: p.integrity,
      ...(p.dependencies && Object.keys(p.dependencies).length ? { dependencies: p.dependencies } : {}),
      ...(p.scripts?.postinstall || p.scripts?.install ? { hasInstallScript: true } : {}),
    };
  }
  return { name: app.name, version: app.version, lockfileVersion: 3, requires: true, packages: entries };
}

/** The service's npmrc for tests: npm never goes to a network. */
export const OFFLINE_NPMRC = 'offline=true\n';

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** The body of one GET / through a hosted app's handler, on a real server on port 0. */
export async function answerOf(hosted: HostedApp): Promise<string> {
  const server = http.createServer(hosted.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    return await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text();
  } finally {
    server.close();
  }
}
