// The dashboard: the token is asked once and kept for this tab only (sessionStorage, never a URL
// or a cookie); every read and every action goes through the service's HTTP API with it, so a
// token sees and may do exactly what it would with the CLI.
import { Api, ApiError, may } from './api.js';
import { confirmed, wireConfirm } from './dialog.js';
import { byId, h } from './dom.js';
import { applyEvent, fillIn, newestFirst, remember } from './records.js';
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

function renderApps() {
  if (state.who) byId('apps', HTMLElement).replaceChildren(appsView(state.apps, newestFirst(state.deployments), state.who, state.selected, actions));
}

function renderReleases() {
  byId('releases-title', HTMLElement).textContent = state.selected ? `Releases of ${state.selected}` : 'Releases';
  const list = state.releases;
  byId('releases', HTMLElement).replaceChildren(state.who && state.selected && list ? releasesView(state.selected, list, state.who, actions) : '');
}

function renderDeployments() {
  byId('deployments', HTMLElement).replaceChildren(deploymentsView(newestFirst(state.deployments).slice(0, RECENT), state.open, actions));
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

/** The signed-in API (the token's). */
function api() {
  if (!state.api) throw new Error('not signed in');
  return state.api;
}

/**
 * Runs a read with the signed-in token and hands its answer on only while that token is still the
 * one signed in: an answer for a token forgotten meanwhile never reaches the page of the next one.
 * @template T
 * @param {(api: Api) => Promise<T>} read
 * @param {(answer: T) => void} use
 */
async function load(read, use) {
  const asked = api();
  const answer = await read(asked);
  if (state.api === asked) use(answer);
}

function loadApps() {
  // Who made each current release current: the newest deployments of every app.
  return load(async (a) => {
    const apps = await a.apps();
    return { apps, lists: await Promise.all(apps.map((app) => a.deployments(app.name, 20))) };
  }, ({ apps, lists }) => {
    state.apps = apps;
    for (const d of lists.flat()) remember(state.deployments, d);
    if (state.selected === null || !apps.some((a) => a.name === state.selected)) state.selected = apps[0]?.name ?? null;
    renderApps();
  });
}

function loadReleases() {
  const app = state.selected;
  return load((a) => (app ? a.releases(app) : Promise.resolve(null)), (list) => {
    if (state.selected !== app) return;
    state.releases = list;
    renderReleases();
  });
}

function loadDeployments() {
  return load((a) => a.deployments(undefined, RECENT), (list) => {
    for (const d of list) remember(state.deployments, d);
    renderDeployments();
  });
}

function loadAgents() {
  return load((a) => a.agents(), (hosts) => {
    state.agents = hosts;
    renderAgents();
  });
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
  const change = applyEvent(state.deployments, e);
  if (change === 'finished') {
    void Promise.all([loadApps(), e.app === state.selected ? loadReleases() : undefined, loadAgents()]).catch(failed);
  } else if (change === 'unknown') {
    void load((a) => a.deployment(e.deploymentId), (d) => {
      fillIn(state.deployments, d);
      renderDeployments();
    }).catch(() => undefined);
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
  wireConfirm();
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
