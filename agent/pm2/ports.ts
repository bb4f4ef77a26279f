import net from 'node:net';
import type { AppState } from './state.js';

/** The port an app's workers listen on: `hotdeploy.port`, else `PORT` in its env (both end up in `env.PORT`). */
export function portOf(state: AppState): number | undefined {
  const port = Number(state.env.PORT);
  return Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined;
}

/**
 * Another hotdeploy app of this host whose pointer names `port`. PM2's cluster mode shares a
 * listening socket between every worker that asks the daemon for the same port, so a second app on
 * it would get no EADDRINUSE: it would take half of the first app's connections.
 */
export function portOwner(states: AppState[], app: string, port: number): string | undefined {
  return states.find((s) => s.app !== app && portOf(s) === port)?.app;
}

/**
 * Whether another process holds `port`: a bind the way a worker binds (every address), closed at
 * once. A PM2 cluster app of any daemon holds its port in that daemon's process, so it is found too.
 * Resolves with the error code (EADDRINUSE, EACCES), or undefined when the port is free.
 */
export function probePort(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
