import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { HostAgent } from '../../agent/messages.js';
import { pino } from 'pino';
import { createPm2Agent } from '../../agent/pm2/agent.js';
import { ensureAdminToken } from './auth.js';
import { buildServer } from './build-server.js';
import { createNatsCluster } from './nats/cluster-agent.js';
import { retainedObjects } from './nats/object-gc.js';
import { releaseLookup } from './nats/release-io.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { ReleaseStore } from './release-store.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
  /** The admin token, only when this start created it (print it once; only its hash is stored). */
  adminToken?: string;
}

/**
 * The host agents `serve` runs in its own process: the in-process PM2 agent, unless
 * `localAgent: false` (then deployments complete with zero workers and say so).
 */
export async function createLocalAgents(options: ServerOptions): Promise<HostAgent[]> {
  if (options.localAgent === false) return [];
  // The PM2 daemon of `<dataDir>/pm2` unless told otherwise (started if none runs); the agent connects in the background.
  const logger = options.logger === false ? pino({ level: 'silent' }) : agentLogger(options.logger);
  const { pm2Home, passEnv, updateTimeoutMs, trialTimeoutMs } = options;
  return [createPm2Agent({ dataDir: path.resolve(options.dataDir), ...(logger ? { logger } : {}),
    ...(pm2Home ? { pm2Home } : {}), ...(passEnv ? { passEnv } : {}), ...(updateTimeoutMs ? { updateTimeoutMs } : {}), ...(trialTimeoutMs ? { trialTimeoutMs } : {}) })];
}

/** The service's log destination (`logger.stream`, e.g. `serve --log-format pretty`) for the agent's lines too. */
function agentLogger(logger: ServerOptions['logger']): ReturnType<typeof pino> | undefined {
  if (typeof logger !== 'object' || logger === null || !('stream' in logger) || !logger.stream) return undefined;
  return pino({ name: 'hotdeploy-agent', level: logger.level ?? 'info' }, logger.stream);
}

/** Builds and listens; SIGINT / SIGTERM close it (running deployments finish, SSE streams end). */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // NATS first: an unreachable server fails the start before anything else runs.
  const store = new ReleaseStore(dataDir, resolveOptions(options));
  const cluster = options.nats
    ? await createNatsCluster({ ...options.nats, lookup: releaseLookup(store), retained: retainedObjects(store) })
    : undefined;
  const adminToken = options.tokens === undefined ? await ensureAdminToken(dataDir) : undefined;
  const localAgents = [...await createLocalAgents(options), ...(cluster ? [cluster] : [])];
  const app = buildServer({ ...options, dataDir, agents: [...(options.agents ?? []), ...localAgents] });
  try {
    await app.listen({ port: options.port ?? 7070, host: options.host ?? '127.0.0.1' });
  } catch (err) {
    // A port in use must not leave the PM2 agent's connection keeping the process alive.
    await app.close().catch(() => undefined);
    await Promise.all(localAgents.map((agent) => agent.close().catch(() => undefined)));
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port ?? 7070;
  const host = options.host ?? '127.0.0.1';
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;

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
