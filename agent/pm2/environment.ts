import { HotError } from '../errors.js';

/**
 * What an app's processes get of the agent's own environment: these names (when set), the locale's
 * `LC_*`, and the names an operator passes through explicitly (`--pass-env`, `passEnv`). Nothing
 * else: the service's token, NATS credentials and whatever else the agent was started with stay out.
 *
 * PM2 workers inherit the environment of PM2's daemon (Node's `cluster.fork` spreads the primary's
 * `process.env`), and PM2's client copies its own `process.env` into every app it starts unless the
 * app says `filter_env`. Deleting from `process.env` later does not change `/proc/<pid>/environ` of
 * a process already started, so the clean environment has to be given at each spawn: the daemon
 * hotdeploy starts (daemon.ts), each app's start under PM2 and each trial start.
 */
export const BASE_ENV_NAMES: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'NODE_ENV'];

const LOCALE = /^LC_[A-Z]+$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isBaseName(name: string): boolean {
  return BASE_ENV_NAMES.includes(name) || LOCALE.test(name);
}

/** The base names set in `source`, with their values. */
export function baseEnv(source: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && isBaseName(name)) env[name] = value;
  }
  return env;
}

/** The pass-through names set in `source`, with their values (an unset name passes nothing). */
export function passedEnv(source: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Checks operator-given pass-through names: plain variable names only. */
export function checkPassEnv(names: readonly string[]): string[] {
  for (const name of names) {
    if (!NAME.test(name)) throw new HotError('HOT_ERR_SETTINGS', `pass-env: ${JSON.stringify(name)} is not a variable name`);
  }
  return [...new Set(names)];
}
