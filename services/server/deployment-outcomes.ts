import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from './audit-log.js';
import type { Deployment, DeploymentRecords } from './deployment-records.js';
import { IntentLog, IntentRefused, type Intent } from './intent-record.js';
import type { Pointers, ReleaseMeta, ReleaseStore } from './release-store.js';

/**
 * A deployment's outcome on disk. Before any host may switch, the deployment's intent is written
 * and fsync'd; once the hosts have answered, the outcome goes into the intent, then into the
 * pointers, the record and the audit line. An outcome the disk refuses stays in its intent: the
 * app's next deployment writes it first, or the next start does (recovery.ts).
 */
export class DeploymentOutcomes {
  /** The fsync'd intent each deployment writes before any host may switch (intent-record.ts). */
  readonly intents: IntentLog;
  /** Outcomes whose records could not be written yet, by app: the app's next deployment writes them first. */
  private readonly unrecorded = new Map<string, () => Promise<void>>();

  constructor(
    private readonly store: ReleaseStore,
    private readonly records: DeploymentRecords,
    private readonly audit: AuditLog,
    private readonly log: FastifyBaseLogger,
  ) {
    this.intents = new IntentLog(store.dataDir);
  }

  /**
   * Before any host switches: an earlier outcome of the app still unrecorded (`recordLeftover`),
   * then `d`'s intent. Throws `IntentRefused` when either cannot be written.
   */
  async begin(d: Deployment, release: ReleaseMeta, pointers: Pointers): Promise<Intent> {
    const intent = intentOf(d, release, pointers);
    await this.recordLeftover(d.app);
    await this.intents.begin(intent);
    return intent;
  }

  /**
   * Makes the outcome visible: first into the intent (in place, needing no free space), then the
   * pointers, the record and the audit line. When those cannot be written even with the reserve,
   * the answer says so and the intent keeps the outcome for the next start to write.
   */
  async conclude(d: Deployment, release: ReleaseMeta, pointers: Pointers, intent: Intent): Promise<void> {
    const fields = { app: d.app, version: d.version, deploymentId: d.id };
    // The records are written even when the intent could not take the outcome: they are what readers see.
    await this.intents.decide(intent, { status: d.status, ...(d.reason ? { reason: d.reason } : {}), finishedAt: d.finishedAt!,
      hosts: d.hosts.map((h) => ({ host: h.host, status: h.status, path: h.path })) })
      .catch((err: unknown) => this.log.error({ ...fields, err }, 'writing the outcome into the intent record failed'));
    const persist = (): Promise<void> => this.intents.settle(d.app, () => this.persist(d, { sha256: release.sha256 }, pointers));
    try {
      await persist();
    } catch (err) {
      this.unrecorded.set(d.app, persist);
      this.log.error({ ...fields, err }, 'recording the deployment\'s outcome failed');
      d.reason = `${d.reason ? `${d.reason}; ` : ''}its outcome could not be recorded on disk (${(err as Error).message}); the service's intent record holds it and the next start writes it`;
    }
  }

  /**
   * An earlier outcome of the app that could not be recorded is written before anything else: its
   * intent must not be overwritten. Throws `IntentRefused` while it still cannot be.
   */
  private async recordLeftover(app: string): Promise<void> {
    const persist = this.unrecorded.get(app);
    if (!persist) return;
    try {
      await persist();
      this.unrecorded.delete(app);
    } catch (err) {
      throw new IntentRefused(err);
    }
  }

  /**
   * The writes that make an outcome visible; each can be repeated (the retry after a full disk,
   * start-up recovery). The pointers, the release's metadata and the record are separate files
   * written at once: the intent holds the outcome until every one is on disk (`IntentLog.settle`
   * clears it only then). The audit line follows them, so a retry after one of them failed does not
   * append it twice.
   */
  async persist(d: Deployment, release: Pick<ReleaseMeta, 'sha256'>, pointers: Pick<Pointers, 'current' | 'previous'>, { audit = true } = {}): Promise<void> {
    const writes: Promise<void>[] = [this.records.save(d)];
    if (d.status === 'succeeded') {
      const newPrevious = pointers.current !== d.version ? pointers.current : pointers.previous;
      writes.push(this.store.promote(d.app, d.version, newPrevious));
    }
    // A reconcile that cannot bring hosts back says nothing about its release, which was good before.
    if (d.status === 'rolled-back' && d.kind !== 'reconcile') writes.push(this.store.markBad(d.app, d.version, d.reason ?? 'rolled back'));
    // Every write ends before this throws: a retry never runs beside one still going.
    for (const write of await Promise.allSettled(writes)) if (write.status === 'rejected') throw write.reason;
    if (audit) await this.audit.append({ who: d.by, what: d.kind, app: d.app, version: d.version, sha256: release.sha256, deploymentId: d.id, outcome: d.status, ...(d.reason ? { reason: d.reason } : {}) });
  }

  /** `d` was refused because its intent could not be written: recorded as far as the disk allows. */
  async refused(d: Deployment, release: ReleaseMeta, err: IntentRefused): Promise<void> {
    // The reserve, if the disk left one, is for exactly this: recording what happened.
    await this.intents.release();
    await this.records.save(d).catch((e: unknown) => this.log.error({ deploymentId: d.id, err: e }, 'writing the deployment record failed'));
    await this.audit.append({ who: d.by, what: d.kind, app: d.app, version: d.version, sha256: release.sha256, deploymentId: d.id, outcome: d.status, reason: err.message })
      .catch((e: unknown) => this.log.error({ deploymentId: d.id, err: e }, 'writing the audit line failed'));
    // An earlier outcome still waiting to be recorded keeps its intent.
    if (!this.unrecorded.has(d.app)) await this.intents.clear(d.app);
  }
}

/** What a deployment intends, before any host switches. */
function intentOf(d: Deployment, release: ReleaseMeta, pointers: Pointers): Intent {
  return {
    deploymentId: d.id, app: d.app, version: d.version, kind: d.kind, by: d.by, sha256: release.sha256, createdAt: d.createdAt, startedAt: d.startedAt!,
    before: { current: pointers.current, previous: pointers.previous },
    after: { current: d.version, previous: pointers.current !== d.version ? pointers.current : pointers.previous },
  };
}
