// The dashboard: the token is asked once and kept for this tab only (sessionStorage, never a URL
// or a cookie); every read and every action goes through the service's HTTP API with it, so a
// token sees and may do exactly what it would with the CLI.
import { Api, ApiError, may } from './api.js';
import { byId, h } from './dom.js';
import { followEvents } from './sse.js';
import { agentsView, appsView, deploymentsView, releasesView } from './views.js';

/** @typedef {import('./api.js').Deployment} Deployment */
/** @typedef {import('./api.js').AppRow} AppRow */
/** @typedef {import('./api.js').HostView} HostView */
/** @typedef {import('./api.js').ReleaseList} ReleaseList */
/** @typedef {import('./api.js').ActivationAnswer} ActivationAnswer */
/** @typedef {import('./api.js').Who} Who */
/** @typedef {import('../../events.js').DeploymentEvent} DeploymentEvent */

const TOKEN_KEY = 'hotdeploy.token';
const RECENT = 50;

const state = {
  /** @type {Api | undefined} */ api: undefined,
  /** @type {Who | undefined} */ who: undefined,
  /** @type {AppRow[]} */ apps: [],
  /** @type {Map<string, Deployment>} */ deployments: new Map(),
  /** @type {Set<string>} */ open: new Set(),
  /** @type {HostView[]} */ agents: [],
  /** @type {string | null} */ selected: null,
  /** @type {ReleaseList | null} */ releases: null,
  /** @type {{ stop(): void } | undefined} */ events: undefined,
};

const actions = {
  /** @param {string} app @param {string} version */
  activate: (app, version) => void act(`Make ${app}@${version} the current release?`, 'Activate', (api) => api.activate(app, version)),
  /** @param {string} app @param {string | null} from */
  rollback: (app, from) => void act(`Roll ${app} back from ${from ?? '—'} to its previous good release?`, 'Roll back', (api) => api.rollback(app)),
  /** @param {string} app */
  select: (app) => void selectApp(app),
  /** @param {string} id */
  toggle: (id) => {
    if (!state.open.delete(id)) state.open.add(id);
    renderDeployments();
  },
};

/**
 * Keeps the newer of two copies of a record: a list fetched before an event arrived must not
 * put a finished deployment back to running.
 * @param {Deployment} d
 */
function remember(d) {
  const known = state.deployments.get(d.id);
  if (known?.finishedAt && !d.finishedAt) return;
  state.deployments.set(d.id, d);
}

function newestFirst() {
  return [...state.deployments.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
}

function renderApps() {
  if (state.who) byId('apps', HTMLElement).replaceChildren(appsView(state.apps, newestFirst(), state.who, state.selected, actions));
}

function renderReleases() {
  byId('releases-title', HTMLElement).textContent = state.selected ? `Releases of ${state.selected}` : 'Releases';
  const list = state.releases;
  byId('releases', HTMLElement).replaceChildren(state.who && state.selected && list ? releasesView(state.selected, list, state.who, actions) : '');
}

function renderDeployments() {
  byId('deployments', HTMLElement).replaceChildren(deploymentsView(newestFirst().slice(0, RECENT), state.open, actions));
}

function renderAgents() {
  byId('agents', HTMLElement).replaceChildren(agentsView(state.agents));
}

/** @param {string} text @param {'ok' | 'error'} [kind] */
function notice(text, kind = 'ok') {
  const el = byId('notice', HTMLElement);
  el.textContent = text;
  el.className = kind;
}

/** The signed-in API (the token's); loads after a sign-out are dropped by their callers' catch. */
function api() {
  if (!state.api) throw new Error('not signed in');
  return state.api;
}

async function loadApps() {
  state.apps = await api().apps();
  // Who made each current release current: the newest deployments of every app.
  const lists = await Promise.all(state.apps.map((a) => api().deployments(a.name, 20)));
  for (const d of lists.flat()) remember(d);
  if (state.selected === null || !state.apps.some((a) => a.name === state.selected)) state.selected = state.apps[0]?.name ?? null;
  renderApps();
}

async function loadReleases() {
  const app = state.selected;
  state.releases = app ? await api().releases(app) : null;
  renderReleases();
}

async function loadDeployments() {
  for (const d of await api().deployments(undefined, RECENT)) remember(d);
  renderDeployments();
}

async function loadAgents() {
  state.agents = await api().agents();
  renderAgents();
}

/** @param {string} app */
async function selectApp(app) {
  state.selected = app;
  renderApps();
  await loadReleases().catch(failed);
}

async function loadAll() {
  await Promise.all([loadDeployments(), loadAgents()]);
  await loadApps();
  renderDeployments();
  await loadReleases();
}

/** A deployment event: the row changes in place; a finished one also moves pointers and releases. @param {DeploymentEvent} e */
function onDeploymentEvent(e) {
  const known = state.deployments.get(e.deploymentId);
  if (e.deployment) {
    state.deployments.set(e.deploymentId, e.deployment);
    void Promise.all([loadApps(), e.app === state.selected ? loadReleases() : undefined, loadAgents()]).catch(failed);
  } else if (known) {
    known.status = e.status;
    if (e.type === 'started') known.startedAt = e.at;
    const worker = e.agent?.worker;
    if (worker) known.workers = [...known.workers.filter((w) => w.host !== worker.host || w.pmId !== worker.pmId), worker];
  } else {
    state.deployments.set(e.deploymentId, {
      id: e.deploymentId, app: e.app, version: e.version, kind: e.kind, status: e.status, by: '…', from: null,
      createdAt: e.at, startedAt: e.type === 'started' ? e.at : null, finishedAt: null, hosts: [], workers: [],
    });
    // The event carries no author: the record has it.
    void api().deployment(e.deploymentId).then((d) => {
      remember(d);
      renderDeployments();
    }, () => undefined);
  }
  renderDeployments();
}

function follow() {
  const live = byId('live', HTMLElement);
  state.events = followEvents({
    url: '/v1/events',
    headers: () => state.api?.headers() ?? {},
    onState: (s) => {
      live.dataset.state = s;
      live.textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'reconnecting…';
    },
    onRefused: () => signOut('The token was refused.'),
    onEvent: (event) => {
      if (event.type === 'deployment') onDeploymentEvent(JSON.parse(event.data));
      // The events missed are no longer kept (or the service restarted): read everything again.
      else if (event.type === 'resync') void loadAll().catch(failed);
    },
  });
}

/**
 * Asks first; the outcome arrives as events (the request does not wait for the deployment).
 * @param {string} question
 * @param {string} label
 * @param {(api: Api) => Promise<ActivationAnswer>} run
 */
async function act(question, label, run) {
  if (!(await confirmed(question, label))) return;
  try {
    const answer = await run(api());
    notice(answer.deployment ? `${answer.deployment.kind} of ${answer.deployment.app} to ${answer.deployment.version} queued` : answer.message ?? 'nothing to do');
  } catch (err) {
    failed(err);
  }
}

/** @param {string} question @param {string} label @returns {Promise<boolean>} */
function confirmed(question, label) {
  const dialog = byId('confirm', HTMLDialogElement);
  byId('confirm-text', HTMLElement).textContent = question;
  const ok = byId('confirm-ok', HTMLButtonElement);
  ok.textContent = label;
  // Escape closes the dialog without a new returnValue: start from none.
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** @param {unknown} err */
function failed(err) {
  if (err instanceof ApiError && err.status === 401) return signOut('The token was refused.');
  notice(err instanceof ApiError ? `${err.code}: ${err.message}` : `error: ${String(err)}`, 'error');
}

/** @param {string} token */
async function signIn(token) {
  state.api = new Api(token);
  const who = await state.api.whoami();
  if (!may(who, 'read')) throw new ApiError(403, 'DEPLOY_ERR_FORBIDDEN', `token "${who.name}" may not read`);
  state.who = who;
  sessionStorage.setItem(TOKEN_KEY, token);
  byId('who', HTMLElement).replaceChildren(h('span', { class: 'who' }, who.name), ` · ${who.apps === '*' ? 'every app' : who.apps.join(', ')} · ${who.actions.join(', ')}`);
  byId('login', HTMLElement).hidden = true;
  byId('board', HTMLElement).hidden = false;
  byId('sign-out', HTMLElement).hidden = false;
  follow();
  await loadAll();
}

/** @param {string} [why] */
function signOut(why) {
  state.events?.stop();
  Object.assign(state, { api: undefined, who: undefined, events: undefined, apps: [], agents: [], releases: null, selected: null });
  state.deployments.clear();
  sessionStorage.removeItem(TOKEN_KEY);
  byId('board', HTMLElement).hidden = true;
  byId('sign-out', HTMLElement).hidden = true;
  byId('who', HTMLElement).textContent = '';
  byId('login', HTMLElement).hidden = false;
  byId('login-error', HTMLElement).textContent = why ?? '';
  byId('token', HTMLInputElement).focus();
}

function start() {
  byId('login-form', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token', HTMLInputElement);
    const token = input.value.trim();
    input.value = '';
    signIn(token).catch((err) => signOut(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)));
  });
  byId('sign-out', HTMLElement).addEventListener('click', () => signOut());
  byId('confirm-cancel', HTMLElement).addEventListener('click', () => byId('confirm', HTMLDialogElement).close('cancel'));
  byId('confirm-ok', HTMLElement).addEventListener('click', () => byId('confirm', HTMLDialogElement).close('ok'));
  // Heartbeat ages and running durations move on; agents have no events of their own.
  setInterval(() => {
    if (!state.api || document.visibilityState !== 'visible') return;
    renderDeployments();
    void loadAgents().catch(() => undefined);
  }, 5_000);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept).catch((err) => signOut(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)));
  else signOut();
}

start();
