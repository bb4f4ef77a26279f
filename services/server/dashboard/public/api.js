// The service's HTTP API, with the token as a bearer header: the same endpoints and scopes as the CLI.

/** @typedef {import('../../deployments.js').Deployment} Deployment */
/** @typedef {import('../../release-store.js').ReleaseMeta} ReleaseMeta */
/** @typedef {import('../../nats/host-views.js').HostView} HostView */
/** @typedef {{ name: string; current: string | null; previous: string | null; releases: number; updatedAt: string | null }} AppRow */
/** @typedef {{ app: string; current: string | null; previous: string | null; releases: ReleaseMeta[] }} ReleaseList */
/** @typedef {{ release: ReleaseMeta; deployment: Deployment | null; message?: string }} ActivationAnswer */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  /** @param {string} token */
  constructor(token) {
    this.token = token;
  }

  /** @returns {Record<string, string>} */
  headers() {
    return { authorization: `Bearer ${this.token}` };
  }

  /** @returns {Promise<Who>} */
  whoami() {
    return this.request('GET', '/v1/whoami');
  }

  /** @returns {Promise<AppRow[]>} */
  async apps() {
    return (/** @type {{ apps: AppRow[] }} */ (await this.request('GET', '/v1/apps'))).apps;
  }

  /** @param {string} app @returns {Promise<ReleaseList>} */
  releases(app) {
    return this.request('GET', `/v1/apps/${encodeURIComponent(app)}/releases`);
  }

  /** @param {string | undefined} app @param {number} limit @returns {Promise<Deployment[]>} */
  async deployments(app, limit) {
    const query = `${app === undefined ? '' : `app=${encodeURIComponent(app)}&`}limit=${limit}`;
    return (/** @type {{ deployments: Deployment[] }} */ (await this.request('GET', `/v1/deployments?${query}`))).deployments;
  }

  /** @param {string} id @returns {Promise<Deployment>} */
  deployment(id) {
    return this.request('GET', `/v1/deployments/${encodeURIComponent(id)}`);
  }

  /** @returns {Promise<HostView[]>} */
  async agents() {
    return (/** @type {{ hosts: HostView[] }} */ (await this.request('GET', '/v1/agents'))).hosts;
  }

  /** Queues it and answers at once (`wait=false`): the outcome arrives as events. @param {string} app @param {string} version @returns {Promise<ActivationAnswer>} */
  activate(app, version) {
    return this.request('POST', `/v1/apps/${encodeURIComponent(app)}/activate?wait=false`, { version });
  }

  /** @param {string} app @returns {Promise<ActivationAnswer>} */
  rollback(app) {
    return this.request('POST', `/v1/apps/${encodeURIComponent(app)}/rollback?wait=false`, {});
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>} the answer's JSON, typed by the methods above
   */
  async request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { ...this.headers(), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'omit', ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) {
      throw new ApiError(res.status, typeof answer.code === 'string' ? answer.code : `HTTP_${res.status}`,
        typeof answer.message === 'string' ? answer.message : res.statusText);
    }
    return answer;
  }
}

/**
 * `GET /v1/whoami`'s answer.
 * @typedef {{ name: string; apps: string[] | '*'; actions: string[] }} Who
 */

/**
 * @param {Who} who
 * @param {string} action
 * @param {string} [app]
 */
export function may(who, action, app) {
  return who.actions.includes(action) && (app === undefined || who.apps === '*' || who.apps.includes(app));
}
