import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { HotError } from './errors.js';
import type { AppManifest, AppMode } from './messages.js';
import { isRecord } from './common/guards.js';

/**
 * Reads an unpacked release's manifest: `package.json` plus optional `hotdeploy` settings, either
 * under package.json's `hotdeploy` key or in `hotdeploy.json` (which wins, key by key).
 * Used by the runtime (which entry, which mode) and by the service (422 before anything changes).
 */
export async function readManifest(dir: string): Promise<AppManifest> {
  const pkg = (await readJson(path.join(dir, 'package.json'), true)) ?? {};
  const fileSettings = await readJson(path.join(dir, 'hotdeploy.json'), false);
  const inline = pkg.hotdeploy === undefined ? {} : pkg.hotdeploy;
  if (!isRecord(inline)) throw new HotError('HOT_ERR_SETTINGS', 'package.json "hotdeploy" must be an object');
  const settings: Record<string, unknown> = { ...inline, ...(fileSettings ?? {}) };

  const mode = settings.mode ?? 'handler';
  if (mode !== 'handler' && mode !== 'process') {
    throw new HotError('HOT_ERR_SETTINGS', `mode must be "handler" or "process", not ${JSON.stringify(mode)}`);
  }
  const port = optionalInteger(settings.port, 'port', 0, 65535);
  const instances = optionalInteger(settings.instances, 'instances', 1, 64);
  const env = settings.env ?? {};
  if (!isRecord(env) || !Object.values(env).every((v) => typeof v === 'string')) {
    throw new HotError('HOT_ERR_SETTINGS', 'env must be an object of strings');
  }
  const entrySetting = settings.entry ?? pkg.main ?? 'index.js';
  if (typeof entrySetting !== 'string' || entrySetting === '') {
    throw new HotError('HOT_ERR_SETTINGS', 'entry (or package.json "main") must be a non-empty string');
  }
  const entry = await resolveEntry(dir, entrySetting);
  const esmRetiredLimit = retiredLimit(settings.esmRetiredLimit);

  return {
    name: typeof pkg.name === 'string' ? pkg.name : undefined,
    version: typeof pkg.version === 'string' ? pkg.version : undefined,
    entry,
    mode: mode as AppMode,
    esm: pkg.type === 'module' || entry.endsWith('.mjs'),
    port,
    instances,
    env: env as Record<string, string>,
    ...(esmRetiredLimit ? { esmRetiredLimit } : {}),
  };
}

/** `esmRetiredLimit`: `{ bytes?, versions? }`, integers ≥ 0. */
function retiredLimit(value: unknown): AppManifest['esmRetiredLimit'] {
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw new HotError('HOT_ERR_SETTINGS', 'esmRetiredLimit must be an object of bytes and versions');
  const bytes = optionalInteger(value.bytes, 'esmRetiredLimit.bytes', 0, Number.MAX_SAFE_INTEGER);
  const versions = optionalInteger(value.versions, 'esmRetiredLimit.versions', 0, Number.MAX_SAFE_INTEGER);
  return { ...(bytes === undefined ? {} : { bytes }), ...(versions === undefined ? {} : { versions }) };
}

/** Resolves the entry as `require` would from the release root (file, file + extension, dir/index). */
async function resolveEntry(dir: string, entry: string): Promise<string> {
  const root = path.resolve(dir);
  const base = path.resolve(root, entry);
  if (base !== root && !base.startsWith(root + path.sep)) {
    throw new HotError('HOT_ERR_ENTRY', `${entry} points outside the release`);
  }
  const candidates = [base, ...['.js', '.cjs', '.mjs', '.json'].map((ext) => base + ext),
    ...['index.js', 'index.cjs', 'index.mjs'].map((f) => path.join(base, f))];
  for (const candidate of candidates) {
    const s = await stat(candidate).catch(() => undefined);
    if (s?.isFile()) return path.relative(root, candidate).split(path.sep).join('/');
  }
  throw new HotError('HOT_ERR_ENTRY', entry);
}

async function readJson(file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HotError('HOT_ERR_MANIFEST', `${path.basename(file)} cannot be read`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HotError('HOT_ERR_MANIFEST', `${path.basename(file)} is not valid JSON`, { cause: err });
  }
  if (!isRecord(value)) throw new HotError('HOT_ERR_MANIFEST', `${path.basename(file)} must hold an object`);
  return value;
}

function optionalInteger(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HotError('HOT_ERR_SETTINGS', `${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}
