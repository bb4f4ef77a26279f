import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { HotError } from './errors.js';
import type { AppManifest, AppMode, EntryExport, FastifyStart, HealthSettings, ProbeSpec, WindowSpec } from './messages.js';
import { parseFastifyStart } from './runtime/fastify-cli.js';
import { isRecord } from './common/guards.js';
import { MAX_CANARY_WATCH_MS, MIN_CANARY_WATCH_MS, parseCanarySize } from './canary-size.js';

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
  const scripts = isRecord(pkg.scripts) ? pkg.scripts : {};
  const fastifyStart = typeof scripts.start === 'string' ? parseFastifyStart(scripts.start) : undefined;
  const entrySetting = settings.entry ?? pkg.main ?? fastifyStart?.file ?? 'index.js';
  if (typeof entrySetting !== 'string' || entrySetting === '') {
    throw new HotError('HOT_ERR_SETTINGS', 'entry (or package.json "main") must be a non-empty string');
  }
  const entry = await resolveEntry(dir, entrySetting, settings.entry === undefined && pkg.main === undefined);
  // The start script hosts this very entry with `fastify start`: a fastify-cli app.
  const fastify = fastifyStart && (await resolveEntry(dir, fastifyStart.file, false).catch(() => undefined)) === entry ? fastifyStart : undefined;
  const exportSetting = settings.export ?? (fastify ? 'fastify-plugin' : 'auto');
  if (typeof exportSetting !== 'string' || !EXPORTS.includes(exportSetting as EntryExport)) {
    throw new HotError('HOT_ERR_SETTINGS', `export must be one of ${EXPORTS.map((e) => `"${e}"`).join(', ')}, not ${JSON.stringify(exportSetting)}`);
  }
  const fastifyPort = exportSetting === 'fastify-plugin' ? fastifyPortOf(fastify, env as Record<string, string>) : undefined;
  const esmRetiredLimit = retiredLimit(settings.esmRetiredLimit);

  return {
    name: typeof pkg.name === 'string' ? pkg.name : undefined,
    version: typeof pkg.version === 'string' ? pkg.version : undefined,
    entry,
    mode: mode as AppMode,
    esm: pkg.type === 'module' || entry.endsWith('.mjs'),
    port: port ?? fastifyPort,
    instances,
    env: env as Record<string, string>,
    ...(esmRetiredLimit ? { esmRetiredLimit } : {}),
    export: exportSetting as EntryExport,
    ...(fastify && exportSetting === 'fastify-plugin' ? { fastify } : {}),
    health: readHealth(settings.health),
    ...canarySetting(settings.canary),
  };
}

const EXPORTS: EntryExport[] = ['auto', 'handler', 'koa', 'fastify', 'fastify-plugin', 'nest', 'factory'];

/** `fastify start`'s port: the script's `-p`, else FASTIFY_PORT, else PORT, else 3000. */
function fastifyPortOf(start: FastifyStart | undefined, env: Record<string, string>): number {
  const candidates = [start?.port, env.FASTIFY_PORT, env.PORT].map((v) => (v === undefined ? NaN : Number(v)));
  return candidates.find((p) => Number.isInteger(p) && p >= 0 && p <= 65535) ?? 3000;
}

/**
 * What the agent asks of a release's workers: the probe after a start, a reload or a hot swap, and
 * the window after a hot swap (none with `"health": false`; manifests stored before the setting
 * existed get the defaults). Process mode keeps its readiness gate: its workers skip the probe.
 */
export function healthChecks(manifest: Pick<AppManifest, 'health'>): { probe?: ProbeSpec; window?: WindowSpec } {
  const health = manifest.health === undefined ? HEALTH_DEFAULTS : manifest.health;
  if (health === false) return {};
  const probe: ProbeSpec = { path: health.path, timeoutMs: health.timeoutMs, ...(health.expect ? { expect: health.expect } : {}) };
  const window = health.windowMs > 0 ? { windowMs: health.windowMs, threshold: health.threshold, errorRate: health.errorRate } : undefined;
  return { probe, ...(window ? { window } : {}) };
}

export const HEALTH_DEFAULTS: HealthSettings = { path: '/', timeoutMs: 5_000, windowMs: 30_000, threshold: 5, errorRate: 0.1 };
const HEALTH_KEYS = new Set(['path', 'expect', 'timeoutMs', 'windowMs', 'threshold', 'errorRate']);

/** `hotdeploy.health`: `false`, or an object whose every key is optional (HEALTH_DEFAULTS). */
function readHealth(value: unknown): HealthSettings | false {
  if (value === false) return false;
  if (value === undefined) return { ...HEALTH_DEFAULTS };
  if (!isRecord(value)) throw new HotError('HOT_ERR_SETTINGS', 'health must be false or an object');
  const unknown = Object.keys(value).filter((k) => !HEALTH_KEYS.has(k));
  if (unknown.length > 0) throw new HotError('HOT_ERR_SETTINGS', `health has unknown keys: ${unknown.join(', ')}`);
  const path = value.path ?? HEALTH_DEFAULTS.path;
  if (typeof path !== 'string' || !path.startsWith('/') || /[\s#]/.test(path)) {
    throw new HotError('HOT_ERR_SETTINGS', 'health.path must be a path starting with "/" (a query is allowed)');
  }
  const expect = value.expect === undefined ? undefined : (Array.isArray(value.expect) ? value.expect : [value.expect]) as unknown[];
  if (expect !== undefined && (expect.length === 0 || !expect.every((s) => Number.isInteger(s) && (s as number) >= 100 && (s as number) <= 599))) {
    throw new HotError('HOT_ERR_SETTINGS', 'health.expect must be a status code or a list of them (100 to 599)');
  }
  const errorRate = value.errorRate ?? HEALTH_DEFAULTS.errorRate;
  if (typeof errorRate !== 'number' || !(errorRate >= 0 && errorRate <= 1)) {
    throw new HotError('HOT_ERR_SETTINGS', 'health.errorRate must be a number from 0 to 1');
  }
  return {
    path,
    ...(expect ? { expect: expect as number[] } : {}),
    timeoutMs: optionalInteger(value.timeoutMs, 'health.timeoutMs', 1, 600_000) ?? HEALTH_DEFAULTS.timeoutMs,
    windowMs: optionalInteger(value.windowMs, 'health.windowMs', 0, 86_400_000) ?? HEALTH_DEFAULTS.windowMs,
    threshold: optionalInteger(value.threshold, 'health.threshold', 1, 1_000_000) ?? HEALTH_DEFAULTS.threshold,
    errorRate,
  };
}

/**
 * `hotdeploy.canary`: the app's default canary for pushes, `n` / `"n%"` or `{ "size": …, "watchMs": … }`;
 * a size of 0 means none (the same as leaving it out).
 */
function canarySetting(value: unknown): { canary?: NonNullable<AppManifest['canary']> } {
  if (value === undefined) return {};
  const record = isRecord(value) ? value : { size: value };
  const unknown = Object.keys(record).filter((k) => k !== 'size' && k !== 'watchMs');
  if (unknown.length > 0) throw new HotError('HOT_ERR_SETTINGS', `canary has unknown keys: ${unknown.join(', ')}`);
  const size = parseCanarySize(record.size);
  if (size === undefined) throw new HotError('HOT_ERR_SETTINGS', `canary must be a number of workers (n) or a percentage ("n%"), not ${JSON.stringify(record.size)}`);
  const watchMs = optionalInteger(record.watchMs, 'canary.watchMs', MIN_CANARY_WATCH_MS, MAX_CANARY_WATCH_MS);
  return size === null ? {} : { canary: { size, ...(watchMs === undefined ? {} : { watchMs }) } };
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
async function resolveEntry(dir: string, entry: string, defaulted: boolean): Promise<string> {
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
  throw new HotError('HOT_ERR_ENTRY', defaulted
    ? `${entry} (package.json has no "main"; name the entry with "hotdeploy": { "entry": "app.js" })`
    : entry);
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
