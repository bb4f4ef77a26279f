// What each section shows, rendered from the API's own records.
import { may } from './api.js';
import { ago, badge, bytes, duration, h, table, when } from './dom.js';

/** @typedef {import('./api.js').Deployment} Deployment */
/** @typedef {import('./api.js').ReleaseList} ReleaseList */
/** @typedef {import('./api.js').HostView} HostView */
/** @typedef {import('./api.js').AppRow} AppRow */
/** @typedef {import('./api.js').Who} Who */
/** @typedef {import('../../../../agent/messages.js').WorkerReport} WorkerReport */
/**
 * What the buttons do.
 * @typedef {{ activate: (app: string, version: string) => void; rollback: (app: string, from: string | null) => void; select: (app: string) => void; toggle: (id: string) => void }} Actions
 */

/**
 * @param {AppRow[]} apps
 * @param {Deployment[]} deployments newest first
 * @param {Who} who
 * @param {string | null} selected
 * @param {Actions} act
 */
export function appsView(apps, deployments, who, selected, act) {
  const rows = apps.map((app) => {
    const made = deployments.find((d) => d.app === app.name && d.status === 'succeeded' && d.version === app.current);
    const since = made ? [when(made.finishedAt), ' by ', h('span', { class: 'who' }, made.by)] : [when(app.updatedAt)];
    return h('tr', { 'data-app': app.name, class: app.name === selected ? 'selected' : undefined },
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => act.select(app.name) }, app.name)),
      h('td', { class: 'version' }, app.current ?? '—'),
      h('td', { class: 'version' }, app.previous ?? '—'),
      h('td', {}, since),
      h('td', { class: 'num' }, app.releases),
      h('td', {}, may(who, 'activate', app.name) && app.releases > 1
        ? h('button', { type: 'button', class: 'danger', onclick: () => act.rollback(app.name, app.current) }, 'Roll back')
        : null));
  });
  return table(['app', 'current', 'previous', 'current since', 'releases', ''], rows, 'No app this token covers has a release yet.');
}

/**
 * @param {string} app
 * @param {ReleaseList} list
 * @param {Who} who
 * @param {Actions} act
 */
export function releasesView(app, list, who, act) {
  const rows = list.releases.map((r) => {
    const state = r.version === list.current ? 'current' : r.version === list.previous ? 'previous' : null;
    return h('tr', { 'data-version': r.version },
      h('td', { class: 'version' }, r.version),
      h('td', {}, state ? badge(state) : null, r.bad ? badge('bad') : null),
      h('td', { class: 'mono', title: r.sha256 }, r.sha256.slice(0, 12)),
      h('td', { class: 'num' }, bytes(r.bundleBytes)),
      h('td', { class: 'num' }, bytes(r.bytes)),
      h('td', { class: 'num' }, r.files),
      h('td', {}, when(r.createdAt)),
      h('td', { class: 'who' }, r.createdBy),
      h('td', { class: 'reason' }, r.badReason ?? ''),
      h('td', {}, may(who, 'activate', app) && state !== 'current'
        ? h('button', { type: 'button', onclick: () => act.activate(app, r.version) }, 'Activate')
        : null));
  });
  return table(['version', '', 'sha256', 'bundle', 'unpacked', 'files', 'created', 'by', 'marked bad because', ''], rows, 'No release stored.');
}

/**
 * @param {Deployment[]} deployments newest first
 * @param {Set<string>} open ids whose details are shown
 * @param {Actions} act
 */
export function deploymentsView(deployments, open, act) {
  const rows = deployments.flatMap((d) => {
    const shown = open.has(d.id);
    const took = d.startedAt ? (d.finishedAt ? Date.parse(d.finishedAt) : Date.now()) - Date.parse(d.startedAt) : undefined;
    const row = h('tr', { 'data-id': d.id, 'data-status': d.status },
      h('td', {}, h('button', { type: 'button', class: 'link', 'aria-expanded': String(shown), onclick: () => act.toggle(d.id) }, shown ? '▾' : '▸')),
      h('td', {}, when(d.startedAt ?? d.createdAt)),
      h('td', {}, d.app),
      h('td', { class: 'version' }, d.from ? `${d.from} → ${d.version}` : d.version),
      h('td', {}, d.kind),
      h('td', {}, badge(d.status), canaryNow(d)),
      h('td', { class: 'num' }, d.finishedAt || took === undefined ? duration(took) : `${duration(took)}…`),
      h('td', { class: 'who' }, d.by),
      h('td', {}, outcomes(d.workers)),
      h('td', { class: 'reason' }, d.reason ?? ''));
    return shown ? [row, h('tr', { class: 'details' }, h('td', { colspan: 10 }, details(d)))] : [row];
  });
  return table(['', 'started', 'app', 'version', 'kind', 'status', 'took', 'by', 'workers', 'reason'], rows, 'No deployment yet.');
}

/** @param {WorkerReport[]} workers */
function outcomes(workers) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const w of workers) counts.set(w.outcome, (counts.get(w.outcome) ?? 0) + 1);
  return [...counts].map(([outcome, n]) => h('span', { class: 'count' }, `${n} `, badge(outcome)));
}

/** Per host and per worker: the path taken, the outcome and why. @param {Deployment} d */
function details(d) {
  const hosts = d.hosts.map((x) => h('tr', {},
    h('td', {}, x.host), h('td', {}, badge(x.status)), h('td', {}, x.path),
    h('td', {}, [x.reverted ? 'reverted' : '', x.lagging ? 'lagging' : ''].filter(Boolean).join(', ')),
    h('td', { class: 'reason' }, x.reason ?? '')));
  const workers = d.workers.map((w) => h('tr', {},
    h('td', {}, w.host), h('td', { class: 'num' }, w.pmId), h('td', { class: 'num' }, w.pid ?? '—'),
    h('td', { class: 'version' }, w.version ?? '—'), h('td', {}, badge(w.outcome)), h('td', { class: 'num' }, duration(w.durationMs)),
    h('td', { class: 'reason' }, w.reason ?? '')));
  const split = h('div', { class: 'split' },
    table(['host', 'status', 'path', '', 'reason'], hosts, 'No host reported yet.'),
    table(['host', 'worker', 'pid', 'version', 'outcome', 'took', 'reason'], workers, 'No worker reported yet.'));
  return d.canary ? h('div', {}, phasesView(d), split) : split;
}

/** The canary's size in the row, and the phase it is in while it runs. @param {Deployment} d */
function canaryNow(d) {
  if (!d.canary) return null;
  const running = d.finishedAt ? undefined : (d.phases ?? []).findLast((p) => p.status === 'running');
  return h('span', { class: 'canary', title: `watched ${duration(d.canary.watchMs)}` }, `canary ${sizeOf(d.canary.size)}${running ? ` · ${running.name}…` : ''}`);
}

/** @param {{ count: number } | { percent: number }} size */
function sizeOf(size) {
  return 'percent' in size ? `${size.percent}%` : String(size.count);
}

/** A canary deployment's phases, in order: where each ran, how long, what the watch saw, why it failed. @param {Deployment} d */
function phasesView(d) {
  const canary = /** @type {NonNullable<Deployment['canary']>} */ (d.canary);
  const rows = (d.phases ?? []).map((p) => h('tr', { 'data-phase': p.name },
    h('td', {}, p.name), h('td', {}, badge(p.status)),
    h('td', {}, p.hosts ? `hosts ${p.hosts.join(', ')}` : `${p.host} #${(p.workers ?? []).join(', #')}`),
    h('td', { class: 'num' }, p.finishedAt ? duration(Date.parse(p.finishedAt) - Date.parse(p.startedAt)) : '…'),
    h('td', {}, p.watch ? `${p.watch.probes} probes, ${p.watch.errors} errors in ${p.watch.requests} answers` : ''),
    h('td', { class: 'reason' }, p.reason ?? '')));
  const from = canary.source === 'settings' ? ' (the app\'s setting)' : '';
  return h('div', { class: 'phases' },
    h('h3', {}, `Canary ${sizeOf(canary.size)}, watched ${duration(canary.watchMs)}${from}`),
    table(['phase', 'status', 'on', 'took', 'the watch saw', 'reason'], rows, 'No phase reported yet.'));
}

/** @param {HostView[]} hosts */
export function agentsView(hosts) {
  const rows = hosts.map((x) => h('tr', { 'data-host': x.host },
    h('td', {}, x.host),
    h('td', {}, x.transport),
    h('td', {}, badge(x.alive ? 'alive' : 'down')),
    h('td', {}, x.lastHeartbeat ? h('span', { title: x.lastHeartbeat }, ago(x.lastHeartbeat)) : 'in process'),
    h('td', {}, badge(x.lagging ? 'lagging' : 'in-sync')),
    h('td', {}, Object.entries(x.apps).map(([app, a]) => h('span', { class: a.lagging ? 'app lagging' : 'app', title: a.lagging ? `wants ${a.desired ?? '?'}` : '' },
      `${app} ${a.version || '—'} ×${a.workers}`)))));
  return table(['host', 'transport', 'state', 'heartbeat', 'lag', 'apps (version × workers)'], rows, 'No host agent is attached.');
}
