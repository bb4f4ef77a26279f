import { readFile, stat } from 'node:fs/promises';
import { HotError } from '../errors.js';
import type { AppManifest } from '../messages.js';

/** One app's settings on this host: they take precedence over the bundle's `hotdeploy` settings. */
export interface HostAppSettings {
  port?: number;
  /** Merged over the bundle's `hotdeploy.env`. */
  env?: Record<string, string>;
  instances?: number;
}

/**
 * `hotdeploy agent --settings FILE`: what this host runs and how. The file stays on the host (mode
 * 0600: it may hold secrets); only the names in `runs` leave it (the host's record, so the service
 * knows which hosts an app's deployments include), never the settings themselves.
 */
export interface HostSettings {
  /** The apps this host runs; absent: every app. */
  runs?: string[];
  apps: Record<string, HostAppSettings>;
}

const fail = (file: string, why: string): never => {
  throw new HotError('HOT_ERR_HOST_SETTINGS', `${file}: ${why}`);
};

export async function readHostSettings(file: string): Promise<HostSettings> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => fail(file, err.code ?? err.message));
  if ((info.mode & 0o077) !== 0) fail(file, `mode ${(info.mode & 0o777).toString(8)}: it may hold secrets, so other users must not read it (chmod 600)`);
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    fail(file, `not valid JSON (${(err as Error).message})`);
  }
  return parseHostSettings(value, file);
}

/** Checks the shape; every mistake is named, none ignored. */
export function parseHostSettings(value: unknown, file: string): HostSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, 'must be a JSON object');
  const { runs, apps = {}, ...rest } = value as { runs?: unknown; apps?: unknown };
  if (Object.keys(rest).length > 0) fail(file, `unknown settings: ${Object.keys(rest).join(', ')}`);
  if (runs !== undefined && (!Array.isArray(runs) || runs.some((a) => typeof a !== 'string'))) fail(file, '"runs" must be a list of app names');
  if (typeof apps !== 'object' || apps === null || Array.isArray(apps)) fail(file, '"apps" must be an object of app name → settings');
  const out: Record<string, HostAppSettings> = {};
  for (const [app, raw] of Object.entries(apps as Record<string, unknown>)) out[app] = appSettings(raw, `${file}: apps.${app}`);
  return { ...(runs ? { runs: runs as string[] } : {}), apps: out };
}

function appSettings(raw: unknown, where: string): HostAppSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(where, 'must be an object');
  const { port, env, instances, ...rest } = raw as Record<string, unknown>;
  if (Object.keys(rest).length > 0) fail(where, `unknown settings: ${Object.keys(rest).join(', ')}`);
  if (port !== undefined && (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)) fail(where, 'port must be an integer from 1 to 65535');
  if (instances !== undefined && (!Number.isInteger(instances) || (instances as number) < 1)) fail(where, 'instances must be a positive integer');
  if (env !== undefined && (typeof env !== 'object' || env === null || Object.values(env).some((v) => typeof v !== 'string'))) {
    fail(where, 'env must be an object of strings');
  }
  return {
    ...(port !== undefined ? { port: port as number } : {}),
    ...(env !== undefined ? { env: env as Record<string, string> } : {}),
    ...(instances !== undefined ? { instances: instances as number } : {}),
  };
}

/** Whether this host runs `app`. */
export function hostRuns(settings: HostSettings | undefined, app: string): boolean {
  return settings?.runs === undefined || settings.runs.includes(app);
}

/** The manifest this host runs the release with: the bundle's, with this host's settings over it. */
export function withHostSettings(settings: HostSettings | undefined, app: string, manifest: AppManifest): AppManifest {
  const own = settings?.apps[app];
  if (!own) return manifest;
  return {
    ...manifest,
    ...(own.port !== undefined ? { port: own.port } : {}),
    ...(own.instances !== undefined ? { instances: own.instances } : {}),
    ...(own.env ? { env: { ...manifest.env, ...own.env } } : {}),
  };
}
