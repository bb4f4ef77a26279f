import { pino } from 'pino';
import { expect } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent, type Pm2Agent } from '../../agent/pm2/agent.js';
import { freePort, handlerApp, release } from './apps.js';
import { pm2Home } from './pm2.js';
import { tempDir } from './tmp.js';

/** A PM2 agent on `home`'s daemon over `dataDir`, with the short timeouts these tests use. */
export function pm2AgentFor(dataDir: string, home: string): Pm2Agent {
  return createPm2Agent({ dataDir, pm2Home: home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000, updateTimeoutMs: 5_000 });
}

export interface StartedAgent {
  home: Awaited<ReturnType<typeof pm2Home>>;
  data: Awaited<ReturnType<typeof tempDir>>;
  port: number;
  agent: Pm2Agent;
  /** The release the app was started with: `v1`, answering 'one'. */
  first: ActivationRequest;
}

/** A fresh PM2 daemon and data directory, and `app` (a handler-mode app) started on them by a real agent. */
export async function startedAgent(app: string): Promise<StartedAgent> {
  const home = await pm2Home();
  const data = await tempDir('hd-data-');
  const port = await freePort();
  const agent = pm2AgentFor(data.dir, home.home);
  const first = await release(data.dir, app, 'v1', handlerApp({ name: app, version: 'v1', port, message: 'one' }));
  const result = await agent.activate(first);
  expect(result, result.reason).toMatchObject({ status: 'succeeded', path: 'start' });
  return { home, data, port, agent, first };
}

/** The app's next release after `last`, answering `message`. */
export function nextRelease(started: Pick<StartedAgent, 'data' | 'port'>, app: string, last: ActivationRequest, version: string, message: string): Promise<ActivationRequest> {
  return release(started.data.dir, app, version, handlerApp({ name: app, version, port: started.port, message }), { version: last.version, releaseDir: last.releaseDir });
}
