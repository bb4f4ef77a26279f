import type { AppManifest } from './messages.js';

/** What the hosts that will run a release may add to its own settings. */
export interface HostPortSources {
  /**
   * Hosts the service cannot see into (behind NATS) run their workers with their own `PORT`, so one
   * bundle can listen on a different port on each host.
   */
  remote?: boolean;
}

/**
 * Where a release's workers get the port they listen on, or undefined when nothing can give one.
 * The deploy service refuses such a release at upload (DEPLOY_ERR_NO_PORT) instead of letting its
 * workers fail at start. One function for every source, so a new one (a host's own settings for
 * the app) is added here and both the check and the answer's wording follow:
 * - process mode: the app's own program listens (hotdeploy gives it no port);
 * - `hotdeploy.port`;
 * - `PORT` in `hotdeploy.env` (an integer from 0 to 65535), which the worker also exports to the app;
 * - hosts behind NATS, whose settings files give each host its own port for the app.
 */
export function portSource(manifest: Pick<AppManifest, 'mode' | 'port' | 'env'>, hosts: HostPortSources = {}): string | undefined {
  if (manifest.mode === 'process') return 'the app listens itself (process mode)';
  if (manifest.port !== undefined) return 'hotdeploy.port';
  if (validPort(manifest.env.PORT)) return 'PORT in hotdeploy.env';
  if (hosts.remote) return 'the settings of each host behind NATS';
  return undefined;
}

/** What a release without a port source is told. */
export const NO_PORT_HINT = 'a handler-mode app needs a port: set "hotdeploy": { "port": 3000 } (or "env": { "PORT": "3000" }) in package.json or hotdeploy.json, or use "mode": "process" for an app that listens itself';

function validPort(value: string | undefined): boolean {
  if (value === undefined || !/^\d{1,5}$/.test(value)) return false;
  return Number(value) <= 65535;
}
