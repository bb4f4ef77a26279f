import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { HostAgent } from '../../agent/messages.js';
import { pino } from 'pino';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import { ensureAdminToken } from './auth.js';
import { buildServer } from './build-server.js';
import type { ServerOptions } from './options.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
  /** The admin token, only when this start created it (print it once; only its hash is stored). */
  adminToken?: string;
}

/**
 * The host agents `serve` runs in its own process. The in-process PM2 agent (issue 4) is
 * constructed here when `localAgent !== false`; until it lands there is none, and deployments
 * complete with zero workers and say so.
 */
export async function createLocalAgents(options: ServerOptions): Promise<HostAgent[]> {
  if (options.localAgent === false) return [];
  // The PM2 daemon of this process's PM2_HOME (started if none runs); the agent connects in the background.
  const logger = options.logger === false ? pino({ level: 'silent' }) : undefined;
  return [createPm2Agent({ dataDir: path.resolve(options.dataDir), ...(logger ? { logger } : {}) })];
}

/** Builds and listens; SIGINT / SIGTERM close it (running deployments finish, SSE streams end). */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const adminToken = options.tokens === undefined ? await ensureAdminToken(dataDir) : undefined;
  const localAgents = await createLocalAgents(options);
  const app = buildServer({ ...options, dataDir, agents: [...(options.agents ?? []), ...localAgents] });
  await app.listen({ port: options.port ?? 7070, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port ?? 7070;
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await app.close();
      await Promise.all(localAgents.map((agent) => agent.close()));
    })();
    return closing;
  };
  // A listener on SIGINT/SIGTERM replaces Node's default (exit at once), so after the graceful close
  // the process must exit itself: PM2 connections or a user's timers could otherwise keep it alive.
  const onSignal = (signal: NodeJS.Signals) => {
    app.log.info({ signal }, 'shutting down');
    close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { url, close, ...(adminToken ? { adminToken } : {}) };
}
