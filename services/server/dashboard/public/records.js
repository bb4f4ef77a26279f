// The deployments the page knows, by id, kept current by the event stream.

/** @typedef {import('./api.js').Deployment} Deployment */
/** @typedef {import('../../events.js').DeploymentEvent} DeploymentEvent */

/**
 * Keeps the newer of two copies of a record: a list fetched before an event arrived must not
 * put a finished deployment back to running.
 * @param {Map<string, Deployment>} records
 * @param {Deployment} d
 */
export function remember(records, d) {
  const known = records.get(d.id);
  if (known?.finishedAt && !d.finishedAt) return;
  records.set(d.id, d);
}

/**
 * The fetched record of a deployment the page first saw in an event (`applyEvent`'s placeholder):
 * it brings the author, the start and the options. The events that arrived meanwhile are newer than
 * a record of a running deployment, so their status, workers and canary phases stay; a finished
 * record replaces the placeholder whole.
 * @param {Map<string, Deployment>} records
 * @param {Deployment} d
 */
export function fillIn(records, d) {
  const known = records.get(d.id);
  if (known?.finishedAt) return;
  if (!known || d.finishedAt) {
    records.set(d.id, d);
    return;
  }
  records.set(d.id, {
    ...d, status: known.status, startedAt: known.startedAt ?? d.startedAt,
    workers: known.workers.length > 0 ? known.workers : d.workers,
    ...(known.canary ? { canary: known.canary } : {}), ...(known.phases?.length ? { phases: known.phases } : {}),
  });
}

/** @param {Map<string, Deployment>} records */
export function newestFirst(records) {
  return [...records.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
}

/**
 * Applies one event to the records: a `finished` one brings the whole record; others move its
 * status and add the worker an agent reported. Returns `'unknown'` for a deployment the page has
 * no record of yet (a placeholder is put in; the caller fetches the record, which names the author).
 * @param {Map<string, Deployment>} records
 * @param {DeploymentEvent} e
 * @returns {'finished' | 'updated' | 'unknown'}
 */
export function applyEvent(records, e) {
  if (e.deployment) {
    records.set(e.deploymentId, e.deployment);
    return 'finished';
  }
  const known = records.get(e.deploymentId);
  if (!known) {
    records.set(e.deploymentId, {
      id: e.deploymentId, app: e.app, version: e.version, kind: e.kind, status: e.status, by: '…', from: null,
      createdAt: e.at, startedAt: e.type === 'started' ? e.at : null, finishedAt: null, hosts: [], workers: [],
      ...(e.canary ? { canary: e.canary, phases: e.agent?.phase ? [e.agent.phase] : [] } : {}),
    });
    return 'unknown';
  }
  known.status = e.status;
  if (e.canary) known.canary = e.canary;
  if (e.type === 'started') known.startedAt = e.at;
  const worker = e.agent?.worker;
  if (worker) known.workers = [...known.workers.filter((w) => w.host !== worker.host || w.pmId !== worker.pmId), worker];
  const phase = e.agent?.phase;
  if (phase) {
    // A canary's phase replaces its earlier state (same phase, same agent), or joins the list.
    const phases = known.phases ?? [];
    const at = phases.findIndex((p) => p.name === phase.name && p.host === phase.host);
    known.phases = at === -1 ? [...phases, phase] : phases.map((p, i) => (i === at ? phase : p));
  }
  return 'updated';
}
