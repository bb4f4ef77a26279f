import type { ArgsDef } from 'citty';
import { checkPassEnv } from '../../agent/pm2/environment.js';
import { isHotError } from '../../agent/errors.js';
import { CliError } from './errors.js';

/** The flags `serve` and `agent` share about the PM2 daemon the apps run under. */
export const pm2Args = {
  'pm2-home': { type: 'string', description: 'PM2 home of the daemon the apps run under (env HOTDEPLOY_PM2_HOME; default <data-dir>/pm2, a daemon hotdeploy starts with a clean environment)' },
  'pass-env': { type: 'string', description: 'names of variables of this environment passed on to every app, comma-separated (env HOTDEPLOY_PASS_ENV)' },
  'update-timeout': { type: 'string', description: 'ms a worker may take to apply an update before it is killed and replaced (env HOTDEPLOY_UPDATE_TIMEOUT_MS, default 10000)' },
} as const satisfies ArgsDef;

type Pm2Flags = { [K in keyof typeof pm2Args]?: string | undefined };

export interface Pm2Settings {
  pm2Home?: string;
  passEnv?: string[];
  updateTimeoutMs?: number;
}

export function pm2Settings(flags: Pm2Flags, env: NodeJS.ProcessEnv): Pm2Settings {
  const home = flags['pm2-home'] || env.HOTDEPLOY_PM2_HOME;
  const timeout = flags['update-timeout'] || env.HOTDEPLOY_UPDATE_TIMEOUT_MS;
  const updateTimeoutMs = timeout ? Number(timeout) : undefined;
  if (updateTimeoutMs !== undefined && (!Number.isInteger(updateTimeoutMs) || updateTimeoutMs < 100)) {
    throw new CliError('CLI_ERR_USAGE', '--update-timeout must be an integer of at least 100 (ms)');
  }
  const names = (flags['pass-env'] || env.HOTDEPLOY_PASS_ENV || '').split(',').map((n) => n.trim()).filter(Boolean);
  try {
    checkPassEnv(names);
  } catch (err) {
    throw isHotError(err) ? new CliError('CLI_ERR_USAGE', err.message) : err;
  }
  return { ...(home ? { pm2Home: home } : {}), ...(names.length ? { passEnv: names } : {}), ...(updateTimeoutMs ? { updateTimeoutMs } : {}) };
}
