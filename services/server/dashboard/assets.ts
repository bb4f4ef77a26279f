import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageFile } from '../../../agent/common/package-files.js';

/**
 * The dashboard's files: plain HTML, CSS and ES modules, shipped in the package as they are
 * (package.json `files`), never built. They are read once, on the first request, and served from
 * memory: a name is looked up in that map, so no request path ever reaches the file system.
 */
export const DASHBOARD_DIR = 'services/server/dashboard/public';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

let loading: Promise<Map<string, Asset>> | undefined;

/** Every servable file of the dashboard folder, by name; other extensions are left out. */
export function dashboardAssets(dir = packageFile(DASHBOARD_DIR)): Promise<Map<string, Asset>> {
  loading ??= load(dir).catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

async function load(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of (await readdir(dir)).sort()) {
    const type = TYPES[path.extname(name)];
    if (type === undefined) continue;
    const body = await readFile(path.join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}
