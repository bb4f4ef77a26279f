import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { HostResult } from '../../agent/messages.js';
import type { AuditLog } from './audit-log.js';
import { INTERRUPTED_REASON, type Deployment, type Deployments } from './deployments.js';
import { readdirOrEmpty, type ReleaseStore } from './release-store.js';

/**
 * Start-up repair of the data directory after a crash or a SIGKILL: staging leftovers removed,
 * half-committed releases (a folder without metadata, or metadata without a folder) removed, stray
 * temp files of atomic writes deleted, pointers to vanished releases cleared, the current link
 * rebuilt when wrong. Intact state is left byte for byte as it was.
 */
export async function recoverReleaseStore(store: ReleaseStore): Promise<void> {
  await rm(store.tmpDir, { recursive: true, force: true, maxRetries: 3 });
  await mkdir(store.tmpDir, { recursive: true });
  await mkdir(store.appsDir, { recursive: true });
  for (const app of await readdirOrEmpty(store.appsDir)) await recoverApp(store, app);
}

async function recoverApp(store: ReleaseStore, app: string): Promise<void> {
  const appDir = store.appDir(app);
  const metas = new Set((await readdirOrEmpty(path.join(appDir, 'meta'))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  const dirs = new Set(await readdirOrEmpty(path.join(appDir, 'releases')));
  for (const dir of dirs) if (!metas.has(dir)) await rm(path.join(appDir, 'releases', dir), { recursive: true, force: true });
  for (const meta of metas) if (!dirs.has(meta)) await rm(store.metaFile(app, meta), { force: true });
  for (const sub of ['', 'meta']) {
    for (const name of await readdirOrEmpty(path.join(appDir, sub))) {
      if (name.endsWith('.tmp')) await rm(path.join(appDir, sub, name), { force: true });
    }
  }
  const pointers = await store.pointers(app);
  const live = (v: string | null) => (v !== null && metas.has(v) && dirs.has(v) ? v : null);
  const current = live(pointers.current);
  const previous = live(pointers.previous);
  if (current !== pointers.current || previous !== pointers.previous) await store.setPointers(app, current, previous);
  else if (current !== null) await store.linkCurrent(app, current, true);
}

/**
 * Start-up: finishes what each intent left on disk says. An outcome there (the hosts had answered)
 * is made visible as it happened: pointers, the deployment record, the audit line (unless it is
 * already in the log). No outcome: the service stopped while hosts worked; the deployment is
 * recorded as interrupted, and the reconcile that follows brings hosts back to the pointers.
 * Returns the interrupted deployments.
 */
export async function recoverIntents(deployments: Deployments, audit: AuditLog, log: FastifyBaseLogger): Promise<Deployment[]> {
  await deployments.intents.open();
  const interrupted: Deployment[] = [];
  for (const { app, intent } of await deployments.intents.pending()) {
    // Torn: its first write never completed, so nothing was dispatched.
    if (intent === undefined) {
      await rm(deployments.intents.file(app), { force: true });
      continue;
    }
    const record = await deployments.get(intent.deploymentId).catch(() => undefined);
    const base: Deployment = record ?? {
      id: intent.deploymentId, app, version: intent.version, kind: intent.kind, status: 'running', by: intent.by, from: intent.before.current,
      createdAt: intent.createdAt, startedAt: intent.startedAt, finishedAt: null, hosts: [], workers: [],
    };
    const fields = { app, version: intent.version, deploymentId: intent.deploymentId };
    if (intent.outcome) {
      const { status, reason, finishedAt, hosts } = intent.outcome;
      const d: Deployment = { ...base, status, finishedAt, ...(reason === undefined ? {} : { reason }), hosts: base.hosts.length > 0 ? base.hosts : hosts.map((h) => ({ ...h, path: h.path as HostResult['path'], status: h.status as HostResult['status'] })) };
      const audited = await audit.mentions(intent.deploymentId);
      await deployments.persist(d, intent, intent.before, { audit: !audited });
      log.warn(fields, 'finished recording a deployment whose outcome was only in its intent record');
    } else if (base.finishedAt === null) {
      const d: Deployment = { ...base, status: 'failed', finishedAt: new Date().toISOString(), reason: INTERRUPTED_REASON };
      await deployments.update(d);
      interrupted.push(d);
      log.warn(fields, 'deployment interrupted by a stop of the service');
    }
    await deployments.intents.clear(app);
  }
  return interrupted;
}
