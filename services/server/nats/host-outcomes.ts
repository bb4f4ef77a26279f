import type { ActivationResult, HostResult } from '../../../agent/messages.js';

/**
 * Every host in every deployment: the hosts that could not be asked, and the ones held back, as
 * rows of the deployment beside the hosts that ran it, each with its status and reason.
 */
export function unreachableRows(absent: Map<string, string>, allowed: boolean): HostResult[] {
  return [...absent].map(([host, why]) => ({
    host, status: 'unreachable', path: 'none',
    reason: allowed ? `could not be asked: ${why}; it catches up when its agent is back` : `could not be asked: ${why}`,
    ...(allowed ? { lagging: true } : {}),
  }));
}

export function heldBackRows(hosts: string[], because: string): HostResult[] {
  return hosts.map((host) => ({ host, status: 'not-applied', path: 'none', reason: `held back: ${because}` }));
}

/** A push with hosts that cannot be asked fails before anything is sent, unless the push allows it. */
export function refusedForUnreachable(absent: Map<string, string>, reachable: string[]): ActivationResult {
  const names = [...absent.keys()].join(', ');
  const reason = `unreachable: ${[...absent].map(([h, why]) => `${h} (${why})`).join('; ')}; nothing was changed. `
    + 'Start those agents, retire the hosts (hotdeploy agent --retire), or allow it for this push (--allow-unreachable)';
  return {
    status: 'failed', path: 'none', reason, workers: [],
    hosts: sortByHost([...unreachableRows(absent, false), ...heldBackRows(reachable, `${names} could not be asked`)]),
  };
}

/** By host name; revert rows stay after the rows of the deployment itself. */
export function sortByHost(rows: HostResult[]): HostResult[] {
  return [...rows].sort((a, b) => Number(a.reverted ?? false) - Number(b.reverted ?? false) || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}
