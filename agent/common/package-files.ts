import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder of hotdeploy's own package.json: the nearest one above this module. */
function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  root = dir;
  return root;
}

/**
 * A built script of hotdeploy's (`dist/<rel>`) that another process or thread runs: PM2 workers and
 * unpacker threads need JavaScript, whether the caller itself runs from `dist/` or from source.
 */
export function builtScript(rel: string): string {
  return path.join(packageRoot(), 'dist', rel);
}

/** A file shipped in hotdeploy's package as it is (package.json `files`), not built. */
export function packageFile(rel: string): string {
  return path.join(packageRoot(), rel);
}

/** hotdeploy's own version (its package.json's), for `hotdeploy --version` and a host's state. */
export function ownVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
