import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { cleanEnv, MAIN, REPO } from '../cli/processes.js';
import { afterAll, beforeAll } from 'vitest';
import type { NatsClusterOptions } from '../../services/server/nats/cluster-agent.js';
import type { ServerOptions } from '../../services/server/options.js';
import { clusterBed, testNames, useNatsServer, type ClusterBed } from '../helpers/nats.js';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** SIGKILL (the agent only: its PM2 daemon and workers live on), and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * `hotdeploy agent` from dist/ as a real child process with its own PM2 home and data directory;
 * resolves once it reads commands. Its host settings file (mode 0600, beside the data directory)
 * gives app `demo` the port `port`, so each host serves the same bundle on its own port; `settings`
 * replaces that file's contents. `env`: more of the agent's environment.
 */
export async function startAgent(options: { nats: string; name: string; prefix: string; dataDir: string; pm2Home: string; port: number;
  env?: NodeJS.ProcessEnv; settings?: object }): Promise<AgentProcess> {
  const settingsFile = `${options.dataDir}.settings.json`;
  await writeFile(settingsFile, JSON.stringify(options.settings ?? { apps: { demo: { port: options.port } } }), { mode: 0o600 });
  const args = [MAIN, 'agent', '--nats', options.nats, '--nats-prefix', options.prefix, '--name', options.name, '--data-dir', options.dataDir, '--heartbeat', '300',
    '--pm2-home', options.pm2Home, '--settings', settingsFile];
  const env = cleanEnv({ HOTDEPLOY_LOG_LEVEL: 'info', ...options.env });
  const child = spawn(process.execPath, args, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (text += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (text += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${options.name} not ready within 30 s:\n${text}`)), 30_000);
    const check = (): void => {
      if (!/reading commands from/.test(text)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${options.name} exited ${code}:\n${text}`));
    });
  });
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => text, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

/** One host of a cluster test: its agent process, its own PM2 daemon and the port its app listens on. */
export interface Pm2Host {
  name: string;
  port: number;
  agent: AgentProcess;
  /** Starts the agent again (after `agent.kill()` or `agent.stop()`), on the same data, PM2 home and port. */
  restart(): Promise<void>;
  /** Kills its PM2 daemon (with the apps) and removes its home. */
  cleanup(): Promise<void>;
}

/** `names.length` hosts, started one after the other. */
export async function startPm2Hosts(cluster: { nats: string; prefix: string; hostDir(name: string): string }, names: string[]): Promise<Pm2Host[]> {
  const hosts: Pm2Host[] = [];
  for (const name of names) {
    const home = await pm2Home();
    const port = await freePort();
    const launch = (): Promise<AgentProcess> => startAgent({ nats: cluster.nats, name, prefix: cluster.prefix, dataDir: cluster.hostDir(name), pm2Home: home.home, port });
    const host: Pm2Host = {
      name, port, agent: await launch(),
      async restart() {
        host.agent = await launch();
      },
      cleanup: home.cleanup,
    };
    hosts.push(host);
  }
  return hosts;
}

export async function stopPm2Hosts(hosts: Pm2Host[]): Promise<void> {
  await Promise.all(hosts.map((h) => h.agent.stop()));
  // One after the other: PM2's killDaemon waits for the daemon's SIGQUIT with a once-listener, so
  // concurrent kills in one process leave the second SIGQUIT unhandled, and it kills this process.
  for (const h of hosts) await h.cleanup();
}

/**
 * This test file's cluster: its nats-server, the deploy service (`clusterBed`) and one agent process
 * per name, started before the first test and stopped after the last. Scenarios share it, in order.
 */
export function usePm2Cluster(names: string[], options: Partial<Omit<NatsClusterOptions, 'lookup'>> = {}, server: Partial<ServerOptions> = {}):
  { readonly bed: ClusterBed; readonly hosts: Pm2Host[]; readonly nats: string } {
  const nats = useNatsServer();
  let bed: ClusterBed | undefined;
  let hosts: Pm2Host[] = [];
  beforeAll(async () => {
    bed = await clusterBed(testNames(), { prepareTimeoutMs: 30_000, applyTimeoutMs: 30_000, ...options }, server);
    hosts = await startPm2Hosts({ nats: nats.url, prefix: bed.names.prefix, hostDir: bed.hostDir }, names);
  }, 120_000);
  afterAll(async () => {
    await stopPm2Hosts(hosts);
    await bed?.close();
  }, 60_000);
  return {
    get bed() {
      if (!bed) throw new Error('the cluster is not started');
      return bed;
    },
    get hosts() { return hosts; },
    get nats() { return nats.url; },
  };
}

/**
 * A cluster on a nats-server of the caller's own (for a file that stops or restarts NATS): the
 * server, the deploy service (`clusterBed`) and one agent process per name.
 */
export async function startOwnPm2Cluster(names: string[], options: Partial<Omit<NatsClusterOptions, 'lookup'>>):
  Promise<{ own: NatsServer; bed: ClusterBed; hosts: Pm2Host[] }> {
  const own = await startNatsServer();
  const bed = await clusterBed(testNames(), { nats: { servers: own.url }, ...options });
  const hosts = await startPm2Hosts({ nats: own.url, prefix: bed.names.prefix, hostDir: bed.hostDir }, names);
  return { own, bed, hosts };
}

/** Stops what `startOwnPm2Cluster` started, NATS last; parts that never started are skipped. */
export async function stopOwnPm2Cluster(parts: { own?: NatsServer | undefined; bed?: ClusterBed | undefined; hosts: Pm2Host[] }): Promise<void> {
  await stopPm2Hosts(parts.hosts);
  await parts.bed?.close();
  await parts.own?.stop();
}
