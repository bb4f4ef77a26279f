import type { Pm2Process } from './client.js';
import { stateFile } from './state.js';

/**
 * The PM2 name of an app's processes. App names are `^[a-z0-9][a-z0-9-]{0,62}$`, so `2`, `0` or
 * `all` are valid apps, and PM2's CLI reads such a string as a pm_id or as every process; with the
 * prefix a name is never a number nor `all` (`pm2 logs hd-2`). hotdeploy itself never addresses a
 * process by name.
 */
export function pm2Name(app: string): string {
  return `hd-${app}`;
}

/**
 * hotdeploy's marker, in the env of every process the agent of `dataDir` starts for `app` (and of
 * those earlier versions started under the app's bare name): a process is the app's only if it
 * carries both. Names prove nothing (a user's own process may be called anything).
 */
export function markerEnv(dataDir: string, app: string): Record<string, string> {
  return { HOTDEPLOY_APP: app, HOTDEPLOY_STATE_FILE: stateFile(dataDir, app) };
}

export function isOwnProcess(proc: Pm2Process, dataDir: string, app: string): boolean {
  return proc.env.HOTDEPLOY_APP === app && proc.env.HOTDEPLOY_STATE_FILE === stateFile(dataDir, app);
}

/** The app a PM2 process name stands for: `hd-<app>`, or the app's bare name (earlier versions). */
export function appOfPm2Name(name: string): string {
  return name.startsWith('hd-') ? name.slice(3) : name;
}
