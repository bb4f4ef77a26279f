import { pino } from 'pino';
import { expect } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { createPm2Agent, type Pm2Agent } from '../../agent/pm2/agent.js';
import { handlerApp, release } from './apps.js';
import { freePort } from './ports.js';
import { pm2Home } from './pm2.js';
import { tempDir } from './tmp.js';

/** A PM2 agent on `home`'s daemon over `dataDir`, with the short timeouts these tests use. */
function pm2AgentFor(dataDir: string, home: string): Pm2Agent {
  return createPm2Agent({ dataDir, pm2Home: home, logger: pino({ level: 'silent' }), settleMs: 500, listenTimeoutMs: 8_000, killTimeoutMs: 3_000, updateTimeoutMs: 5_000 });
}

interface StartedAgent {
  home: Awaited<ReturnType<typeof pm2Home>>;
  data: Awaited<ReturnType<typeof tempDir>>;
  port: number;
  agent: Pm2Agent;
  /** The release the app was started with: `v1`, answering 'one'. */
  first: ActivationRequest;
}

/** A fresh PM2 daemon and data directory, and `app` (a handler-mode app) started on them by a real agent. */
async function startedAgent(app: string): Promise<StartedAgent> {
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
function nextRelease(started: Pick<StartedAgent, 'data' | 'port'>, app: string, last: ActivationRequest, version: string, message: string): Promise<ActivationRequest> {
  return release(started.data.dir, app, version, handlerApp({ name: app, version, port: started.port, message }), { version: last.version, releaseDir: last.releaseDir });
}

/**
 * `startedAgent` as one object for a test file: the agent (replaceable, as after a restart), the
 * latest release, the next one, and teardown of the agent, the daemon and the data directory.
 */
export class AgentBed {
  agent: Pm2Agent;
  last: ActivationRequest;
  readonly home: StartedAgent['home'];
  readonly data: StartedAgent['data'];
  readonly port: number;

  private constructor(readonly app: string, started: StartedAgent) {
    ({ home: this.home, data: this.data, port: this.port, agent: this.agent, first: this.last } = started);
  }

  static async start(app: string): Promise<AgentBed> {
    return new AgentBed(app, await startedAgent(app));
  }

  /** A second agent over the same daemon and data directory (the service restarted). */
  newAgent(): Pm2Agent {
    return pm2AgentFor(this.data.dir, this.home.home);
  }

  async next(version: string, message: string): Promise<ActivationRequest> {
    this.last = await nextRelease(this, this.app, this.last, version, message);
    return this.last;
  }

  async close(): Promise<void> {
    await this.agent.close();
    await this.home.cleanup();
    await this.data.cleanup();
  }
}
