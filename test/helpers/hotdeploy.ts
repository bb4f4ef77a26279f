import type { ServerOptions } from '../../services/server/options.js';
import { startServer } from '../../services/server/start-server.js';
import type { WorkerReport, WorkerState } from '../../agent/messages.js';
import { makeBundle } from './bundles.js';
import { pm2Home } from './pm2.js';
import { tempDir } from './tmp.js';

const TOKEN = 'e2e-admin-token-0123456789';
/** The admin token `startHotdeploy`'s server accepts (for tests that call the API or the CLI themselves). */
export const HOTDEPLOY_TOKEN = TOKEN;

/** The deploy service with its in-process PM2 agent, on port 0, over a fresh data dir and PM2 home. */
export interface Hotdeploy {
  url: string;
  dataDir: string;
  pm2Home: string;
  close(): Promise<void>;
}

/** `options`: more of `startServer`'s options (the local agent's `passEnv`, ...). */
export async function startHotdeploy(options: Partial<ServerOptions> = {}): Promise<Hotdeploy> {
  const home = await pm2Home();
  const data = await tempDir('hd-e2e-');
  const server = await startServer({ dataDir: data.dir, port: 0, pm2Home: home.home, tokens: [{ name: 'admin', token: TOKEN }], logger: false, ...options });
  return {
    url: server.url,
    dataDir: data.dir,
    pm2Home: home.home,
    async close() {
      await server.close();
      await home.cleanup();
      await data.cleanup();
    },
  };
}

export interface DeploymentBody {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled-back';
  reason?: string;
  workers: WorkerReport[];
  hosts: { host: string; status: string; path: string; reason?: string }[];
}

async function api<T>(hd: Hotdeploy, method: string, pathname: string, body?: Buffer | object): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  let payload: Buffer | string | undefined;
  if (Buffer.isBuffer(body)) {
    headers['content-type'] = 'application/gzip';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`${hd.url}${pathname}`, { method, headers, body: payload });
  return { status: res.status, body: (await res.json()) as T };
}

/** Uploads a real .tgz of `files` over HTTP; with the default `wait`, answers once the deployment ended. */
export async function push(hd: Hotdeploy, app: string, version: string, files: Record<string, string | object>, query = ''): Promise<{ status: number; deployment: DeploymentBody }> {
  const res = await api<{ deployment: DeploymentBody }>(hd, 'PUT', `/v1/apps/${app}/releases/${version}${query}`, await makeBundle(files));
  return { status: res.status, deployment: res.body.deployment };
}

export async function rollback(hd: Hotdeploy, app: string, to?: string): Promise<DeploymentBody> {
  const res = await api<{ deployment: DeploymentBody }>(hd, 'POST', `/v1/apps/${app}/rollback`, to ? { to } : {});
  if (res.status !== 200) throw new Error(`rollback: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.deployment;
}

export async function appStatus(hd: Hotdeploy, app: string): Promise<{ current: string | null; previous: string | null; workers: WorkerState[] }> {
  return (await api<{ current: string | null; previous: string | null; workers: WorkerState[] }>(hd, 'GET', `/v1/apps/${app}`)).body;
}

export async function deployment(hd: Hotdeploy, id: string): Promise<DeploymentBody> {
  return (await api<DeploymentBody>(hd, 'GET', `/v1/deployments/${id}`)).body;
}
