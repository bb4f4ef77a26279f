import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, it, type TestFunction } from 'vitest';
import type { PlanningAgent } from '../../agent/messages.js';
import { inProcessHost, type InProcessHost } from './in-process-host.js';
import { connectNats } from '../../agent/nats/connect.js';
import { startNatsHost, type NatsHost, type NatsHostOptions } from '../../agent/nats/host-agent.js';
import { natsNames, type NatsNames } from '../../agent/nats/protocol.js';
import { destroyResources, openResources } from '../../agent/nats/resources.js';
import { buildServer } from '../../services/server/build-server.js';
import { createNatsCluster, type NatsCluster, type NatsClusterOptions } from '../../services/server/nats/cluster-agent.js';
import { retainedObjects } from '../../services/server/nats/object-gc.js';
import { releaseLookup, releaseUnpacker } from '../../services/server/nats/release-io.js';
import { DEFAULT_LIMITS, resolveOptions, type ServerOptions } from '../../services/server/options.js';
import { ReleaseStore } from '../../services/server/release-store.js';
import { natsServerBinary, startNatsServer, type NatsServer } from './nats-server.js';
import { TOKEN_CONFIG } from './server.js';
import { tempDir } from './tmp.js';

/** `it` for a test that needs a NATS server: skipped where no nats-server is installed. */
export function itWithNats(name: string, fn: TestFunction, timeoutMs?: number): void {
  it.skipIf(natsServerBinary === undefined)(name, fn, timeoutMs);
}

let server: NatsServer | undefined;

/**
 * This test file's own nats-server (JetStream, a port of its own, a temp store), started before its
 * first test that runs and stopped after its last; the helpers below connect to it.
 */
export function useNatsServer(): { readonly url: string } {
  beforeAll(async () => {
    if (natsServerBinary !== undefined) server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  });
  return { get url() { return natsUrl(); } };
}

function natsUrl(): string {
  if (!server) throw new Error('no nats-server: call useNatsServer() at the top of the test file');
  return server.url;
}

/** Every test gets its own subjects, stream and buckets, removed in teardown. */
export function testNames(): NatsNames {
  return natsNames(`hdt${randomBytes(5).toString('hex')}`);
}

export interface TestHost {
  name: string;
  dataDir: string;
  nc: NatsConnection;
  loop: NatsHost;
  agent: PlanningAgent;
  /** Stops reading commands and drops the connection (a host that goes away). */
  stop(): Promise<void>;
  /** Drops the connection only, leaving whatever the host was doing unfinished (a killed host). */
  kill(): Promise<void>;
}

/** A host agent over NATS with its own connection and data directory, driving `agent`. */
export async function startHost(names: NatsNames, agent: PlanningAgent, dataDir: string, heartbeatMs = 300, keepReleases?: number,
  extra: Partial<NatsHostOptions> = {}): Promise<TestHost> {
  const nc = await connectNats({ servers: natsUrl(), name: agent.host });
  const loop = startNatsHost({
    ...extra,
    resources: await openResources(nc, names), host: agent.host, dataDir, agent, heartbeatMs,
    ...(keepReleases === undefined ? {} : { keepReleases }),
    unpack: releaseUnpacker(DEFAULT_LIMITS), hotdeployVersion: 'test', logger: extra.logger ?? silent,
  });
  await loop.ready;
  let stopped = false;
  return {
    name: agent.host, dataDir, nc, loop, agent,
    async stop() {
      if (stopped) return;
      stopped = true;
      await nc.close();
      await loop.close();
    },
    async kill() {
      stopped = true;
      await nc.close();
    },
  };
}

export interface ClusterBed {
  names: NatsNames;
  app: FastifyInstance;
  cluster: NatsCluster;
  dataDir: string;
  /** Per-host data directories live here; their names contain the host's name. */
  hostDir(name: string): string;
  close(): Promise<void>;
}

/** The deploy service (fastify, inject) whose one host agent is the NATS cluster. */
export async function clusterBed(names: NatsNames, options: Partial<Omit<NatsClusterOptions, 'lookup'>> = {},
  server: Partial<ServerOptions> = {}): Promise<ClusterBed> {
  const { dir, cleanup } = await tempDir('hd-nats-');
  const dataDir = path.join(dir, 'service');
  const store = new ReleaseStore(dataDir, resolveOptions({ dataDir }));
  const cluster = await createNatsCluster({
    nats: { servers: natsUrl() }, prefix: names.prefix, prepareTimeoutMs: 10_000, applyTimeoutMs: 20_000, ...options,
    lookup: releaseLookup(store), retained: retainedObjects(store),
  });
  const app = buildServer({ ...server, dataDir, tokens: TOKEN_CONFIG, logger: false, agents: [cluster] });
  await app.ready();
  return {
    names, app, cluster, dataDir,
    hostDir: (name) => path.join(dir, `host-${name}`),
    async close() {
      await app.close();
      await cluster.close();
      await removeNats(names);
      await cleanup();
    },
  };
}

export async function removeNats(names: NatsNames): Promise<void> {
  const nc = await connectNats({ servers: natsUrl() });
  try {
    await destroyResources(nc, names);
  } finally {
    await nc.close();
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The hooks of a test file whose tests each get a fresh cluster bed (service + NATS resources) and
 * in-process hosts added with `addHost`; hosts are stopped and the bed closed after each test.
 */
export function useClusterBed(options: Partial<Omit<NatsClusterOptions, 'lookup'>> = {}): { bed: () => ClusterBed; hosts: () => TestHost[]; addHost: (name: string) => Promise<InProcessHost> } {
  let bed: ClusterBed;
  let hosts: TestHost[] = [];
  useNatsServer();
  beforeEach(async () => {
    bed = await clusterBed(testNames(), options);
    hosts = [];
  });
  afterEach(async () => {
    for (const host of hosts) await host.stop();
    for (const host of hosts) await host.agent.close();
    await bed.close();
  });
  return {
    bed: () => bed,
    hosts: () => hosts,
    async addHost(name) {
      const agent = inProcessHost(name);
      hosts.push(await startHost(bed.names, agent, bed.hostDir(name)));
      return agent;
    },
  };
}
