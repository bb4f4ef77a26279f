import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { ActivationRequest, DeploymentPhase, HealthWindowEvent, HostObservation, HostResult, WorkerReport } from '../../agent/messages.js';
import type { CanaryRecord } from './canary.js';
import { DeployError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './fs-atomic.js';

export type DeploymentKind = ActivationRequest['kind'];
export type DeploymentStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled-back';

/** One host's part of a deployment (agent/messages.ts `HostResult`: reverted, lagging). */
export type HostOutcome = HostResult;

/** `<dataDir>/deployments/<id>.json`. */
export interface Deployment {
  id: string;
  app: string;
  version: string;
  kind: DeploymentKind;
  status: DeploymentStatus;
  /** The token's name. */
  by: string;
  /** The app's current version when the deployment started. */
  from: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  reason?: string;
  /** A stable code for why it failed, when a host or the transport gave one (`DEPLOY_ERR_CLUSTER_UNAVAILABLE`). */
  code?: string;
  /** Per-deployment choices (`DeploymentOptions`), recorded as asked. */
  options?: DeploymentOptions;
  hosts: HostOutcome[];
  workers: WorkerReport[];
  /**
   * What each host was found running when the service looked again: for a deployment the service
   * stopped in the middle of, at the next start (reconcile.ts).
   */
  endedOn?: HostObservation[];
  /** The canary the push ran with (absent without one). */
  canary?: CanaryRecord;
  /** A canary deployment's phases as the agents report them: canary, watch, then rest or swap-back. */
  phases?: DeploymentPhase[];
  /** An `auto-rollback`'s cause: the release whose health window tripped, and the figures. */
  cause?: AutoRollbackCause;
}

/**
 * Why an `auto-rollback` deployment ran. `version` is marked bad with `reason`; `deploymentId` is
 * the deployment that made it current (its own record is left as it ended).
 */
export interface AutoRollbackCause {
  version: string;
  deploymentId: string | null;
  reason: string;
  /** The tripped workers' reports (more may arrive while the rollback waits for its turn). */
  windows: HealthWindowEvent[];
}

/** What a push, activate or rollback may ask beside the release: how hosts apply it, and the unreachable-host policy. */
export interface DeploymentOptions {
  /** `reload-all`: every host takes the checked graceful reload, whatever its dry run says. */
  strategy?: 'auto' | 'reload-all';
  /** Hosts that cannot be asked are listed `unreachable` and catch up later, instead of failing the deployment. */
  allowUnreachable?: boolean;
}

/** Deployment records kept on disk; older finished ones are deleted as new ones finish. */
export const KEEP_DEPLOYMENT_RECORDS = 1000;

/**
 * The `queued` and `running` records are written without an fsync: they lie on the path from an
 * accepted upload to the workers, where each fsync costs 1–3 ms (more when the disk is busy), and
 * the one fsync there is the intent's (intent-record.ts), which start-up recovery reads first.
 * Only the final record must survive a power loss; a killed process loses neither once written (the
 * write is atomic and in the page cache), and `recover` copes with what a power loss may leave.
 */
const INTERMEDIATE = { sync: false } as const;

export const INTERRUPTED_REASON = 'interrupted: the server stopped before it finished';

/**
 * The deployment records, one file each under `<dataDir>/deployments/`. Every write of a record
 * chains after the one before, and readers wait for the chain; until its first write lands, a
 * deployment announced as `queued` is answered from memory.
 */
export class DeploymentRecords {
  private readonly dir: string;
  /** Record writes not yet settled, by deployment id (the last of its chain): readers wait for them. */
  private readonly writes = new Map<string, Promise<void>>();
  /** Deployments announced (`queued`) and not finished, whose record may not be written yet: `get` falls back to them. */
  private readonly unwritten = new Map<string, Deployment>();

  constructor(dataDir: string, private readonly log: FastifyBaseLogger) {
    this.dir = path.join(dataDir, 'deployments');
  }

  /**
   * Start-up: deployments a killed server left queued or running are recorded as failed. Those two
   * records are written without an fsync (`save`), so after a power loss one may be empty or torn:
   * it is moved aside as `<id>.json.unreadable` (the listing and retention skip it) and logged.
   * Temp files of cut-short writes are removed. Returns the deployments it found interrupted.
   */
  async recover(): Promise<Deployment[]> {
    await mkdir(this.dir, { recursive: true });
    const interrupted: Deployment[] = [];
    for (const name of await readdir(this.dir)) {
      // A write the crash cut short (writeJsonAtomic's sibling temp file).
      if (name.endsWith('.tmp')) await rm(path.join(this.dir, name), { force: true });
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      const d = await readJsonFile<Deployment>(file).catch(() => null);
      if (d === undefined) continue;
      if (d === null || typeof d !== 'object' || typeof d.status !== 'string') {
        this.log.warn({ file }, 'unreadable deployment record moved aside');
        await rename(file, `${file}.unreadable`);
      } else if (d.status === 'queued' || d.status === 'running') {
        const failed: Deployment = { ...d, status: 'failed', finishedAt: new Date().toISOString(), reason: INTERRUPTED_REASON };
        await this.save(failed);
        interrupted.push(failed);
      }
    }
    return interrupted;
  }

  async get(id: string): Promise<Deployment> {
    if (!/^[a-z0-9-]{1,64}$/.test(id)) throw new DeployError('DEPLOY_ERR_DEPLOYMENT_NOT_FOUND', id);
    await this.writes.get(id);
    const d = await readJsonFile<Deployment>(path.join(this.dir, `${id}.json`)) ?? this.unwritten.get(id);
    if (d === undefined) throw new DeployError('DEPLOY_ERR_DEPLOYMENT_NOT_FOUND', id);
    return { ...d };
  }

  /** Newest first (ids start with the creation time in base 36). */
  async list(app: string | undefined, limit: number): Promise<Deployment[]> {
    await Promise.all(this.writes.values());
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort().reverse();
    const out: Deployment[] = [];
    for (const name of names) {
      if (out.length >= limit) break;
      const d = await readJsonFile<Deployment>(path.join(this.dir, name));
      if (d && (app === undefined || d.app === app)) out.push(d);
    }
    return out;
  }

  /** `get` answers with `d` until `untrack`: from the announcement until the deployment finishes, its record may not be written yet. */
  track(d: Deployment): void {
    this.unwritten.set(d.id, d);
  }

  untrack(id: string): void {
    this.unwritten.delete(id);
  }

  /** Writes a finished deployment's record (durably) after the writes before it: its outcome, or later what its hosts ended on. */
  async update(d: Deployment): Promise<void> {
    await this.writes.get(d.id);
    await this.save(d);
  }

  /**
   * Retention: the oldest finished records beyond `KEEP_DEPLOYMENT_RECORDS` are deleted. Ids start
   * with the creation time, so name order is age order; unfinished records are kept.
   */
  async prune(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names.slice(0, Math.max(0, names.length - KEEP_DEPLOYMENT_RECORDS))) {
      const d = await readJsonFile<Deployment>(path.join(this.dir, name)).catch(() => undefined);
      if (d?.finishedAt) await rm(path.join(this.dir, name), { force: true });
    }
  }

  /** An intermediate write of the record (not fsync'd), after the ones before it; a failure is logged. */
  record(d: Deployment): Promise<void> {
    const snapshot = { ...d };
    const write = (this.writes.get(d.id) ?? Promise.resolve()).then(() => this.save(snapshot, INTERMEDIATE)).catch((err: unknown) => {
      this.log.warn({ app: d.app, version: d.version, deploymentId: d.id, status: d.status, err }, 'writing the deployment record failed');
    });
    this.writes.set(d.id, write);
    void write.then(() => {
      if (this.writes.get(d.id) === write) this.writes.delete(d.id);
    });
    return write;
  }

  /** Atomic always; durable (fsync'd) unless `INTERMEDIATE`. */
  async save(d: Deployment, options?: typeof INTERMEDIATE): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${d.id}.json`), d, undefined, options);
  }
}
