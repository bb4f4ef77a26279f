import { HEALTH_DEFAULTS } from '../../agent/manifest.js';
import { MAX_CANARY_WATCH_MS, MIN_CANARY_WATCH_MS, parseCanarySize } from '../../agent/canary-size.js';
import type { CanarySize } from '../../agent/canary-size.js';
import type { AppManifest, CanarySpec, DeploymentPhase } from '../../agent/messages.js';
import { DeployError } from './errors.js';

/** `?canary=<n | n%>&canaryWatchMs=<ms>` as a push asked for it (checked before a byte of the bundle is read). */
export interface CanaryAsk {
  /** `null`: `canary=0`, no canary whatever the app's settings say; absent: the settings decide. */
  size?: CanarySize | null;
  watchMs?: number;
}

/** A canary as a deployment records it: what ran, and where its size came from. */
export type CanaryRecord = CanarySpec & { source: 'request' | 'settings' };

/** Watching a canary for as long as a health window runs, or this long when the window is off. */
export const DEFAULT_CANARY_WATCH_MS = 30_000;

/**
 * Reads the push's canary query. A bad value, or a canary on a push that does not activate, is
 * `DEPLOY_ERR_CANARY` (400), before anything is stored or deployed.
 */
export function canaryAsk(query: { canary?: string; canaryWatchMs?: string; activate?: boolean }): CanaryAsk {
  const ask: CanaryAsk = {};
  if (query.canary !== undefined) {
    const size = parseCanarySize(query.canary);
    if (size === undefined) throw new DeployError('DEPLOY_ERR_CANARY', `canary=${JSON.stringify(query.canary)}`);
    ask.size = size;
  }
  if (query.canaryWatchMs !== undefined) {
    const ms = /^[0-9]{1,9}$/.test(query.canaryWatchMs) ? Number(query.canaryWatchMs) : NaN;
    if (!(ms >= MIN_CANARY_WATCH_MS && ms <= MAX_CANARY_WATCH_MS)) throw new DeployError('DEPLOY_ERR_CANARY', `canaryWatchMs=${JSON.stringify(query.canaryWatchMs)}`);
    ask.watchMs = ms;
  }
  if (query.activate === false && (ask.size || ask.watchMs !== undefined)) {
    throw new DeployError('DEPLOY_ERR_CANARY', 'a push with activate=false deploys nothing to watch');
  }
  return ask;
}

/**
 * The canary a push runs: the one it asked for, else the app's `hotdeploy.canary` setting; watched
 * for the asked time, else the setting's, else the release's health window (30 s when that is off).
 */
export function resolveCanary(ask: CanaryAsk, manifest: Pick<AppManifest, 'canary' | 'health'>): CanaryRecord | undefined {
  if (ask.size === null) return undefined;
  const size = ask.size ?? manifest.canary?.size;
  if (!size) return undefined;
  const health = manifest.health ?? HEALTH_DEFAULTS;
  const windowMs = health === false || health.windowMs === 0 ? DEFAULT_CANARY_WATCH_MS : health.windowMs;
  return { size, watchMs: ask.watchMs ?? manifest.canary?.watchMs ?? windowMs, source: ask.size ? 'request' : 'settings' };
}

/** The phases with `phase` in place of the earlier state of the same phase of the same agent (or appended). */
export function withPhase(phases: readonly DeploymentPhase[], phase: DeploymentPhase): DeploymentPhase[] {
  const at = phases.findIndex((p) => p.name === phase.name && p.host === phase.host);
  return at === -1 ? [...phases, phase] : phases.map((p, i) => (i === at ? phase : p));
}
