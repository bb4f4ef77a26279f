import type { AuditLog } from './audit-log.js';
import type { AutoRollbackCause, Deployment } from './deployment-records.js';
import { DeployError } from './errors.js';
import type { ReleaseStore } from './release-store.js';

/**
 * An auto-rollback goes to the release before the tripped one, decided when its turn comes (the
 * push that made the tripped release current may still have been running when the trip came).
 * Sets `d.version` to that release, or returns why it does not run: the tripped release is not current
 * any more, or no good one came before it.
 */
export async function autoRollbackTarget(store: ReleaseStore, audit: AuditLog, d: Deployment, cause: AutoRollbackCause): Promise<string | undefined> {
  const pointers = await store.pointers(d.app);
  if (pointers.current !== cause.version) return `${cause.version} is not current (${pointers.current ?? 'none'} is): nothing to roll back`;
  // The previous release, unless it is marked bad itself: then the newest older one that is not.
  const previous = pointers.previous !== null && pointers.previous !== cause.version ? await store.get(d.app, pointers.previous) : undefined;
  const target = previous && !previous.bad ? previous.version : await rollbackTarget(store, d.app).catch(() => undefined);
  if (target === undefined || target === cause.version) {
    await markTripped(store, audit, d, cause);
    return `no release before ${cause.version} to go back to; it stays current, marked bad`;
  }
  d.version = target;
  return undefined;
}

/** The tripped release is marked bad, the reason saying why (`hotdeploy releases` shows it). */
export async function markTripped(store: ReleaseStore, audit: AuditLog, d: Deployment, cause: AutoRollbackCause): Promise<void> {
  const reason = `${cause.reason} (auto-rollback ${d.id})`;
  await store.markBad(d.app, cause.version, reason);
  await audit.append({ who: d.by, what: 'mark-bad', app: d.app, version: cause.version, deploymentId: d.id, outcome: 'bad', reason });
}

/**
 * `rollback` without `to`: walking back from the current release (by creation), the first that went
 * live (a deployment of it succeeded) and is not marked bad. Releases that never served (a failed
 * deployment, `--no-activate` and never activated) are skipped, so a rollback cannot land on code
 * that never ran, and repeated rollbacks go further back. Naming any stored release with `to` is
 * allowed (the operator decided).
 */
export async function rollbackTarget(store: ReleaseStore, app: string, to?: string): Promise<string> {
  if (to !== undefined) return (await store.require(app, to)).version;
  const { current } = await store.pointers(app);
  const releases = await store.list(app);
  if (releases.length === 0) throw new DeployError('DEPLOY_ERR_APP_NOT_FOUND', app);
  const index = releases.findIndex((r) => r.version === current);
  const older = index === -1 ? [] : releases.slice(index + 1);
  const target = older.find((r) => !r.bad && r.live !== false);
  if (!target) throw new DeployError('DEPLOY_ERR_NO_ROLLBACK_TARGET', app);
  return target.version;
}
