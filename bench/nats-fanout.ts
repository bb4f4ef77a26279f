/**
 * Fan-out at scale over NATS JetStream: N simulated hosts (default 200) — real clients of
 * the real subjects, stream, KV and object store, each with its own connection, durable consumer
 * and data directory, each pulling the bundle, checking its sha256 and unpacking it with the
 * service's guarded extraction; only the PM2 part is replaced by an agent that answers at once.
 * Prints the time from the deployment's start to every host prepared, and to every host applied:
 * after the first start, `deployments` updates as full bundles and as many as deltas against the
 * release before (each host pulls the delta object, a few hundred bytes, and builds the release from
 * the one it serves), alternating, in the same run with the same hosts.
 *
 *   npm run build && npx tsc -p tsconfig.bench.json && node dist/bench/nats-fanout.js [hosts] [deployments]
 *
 * NATS at HOTDEPLOY_NATS (default nats://127.0.0.1:4222); everything it creates is removed at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create } from 'tar';
import type { ActivationRequest, AppManifest, PlanningAgent } from '../agent/messages.js';
import { connectNats } from '../agent/nats/connect.js';
import { startNatsHost, type NatsHost } from '../agent/nats/host-agent.js';
import { natsNames } from '../agent/nats/protocol.js';
import { destroyResources, openResources } from '../agent/nats/resources.js';
import { writeTree } from '../test/helpers/tmp.js';
import { gzipTar } from '../services/cli/tar-writer.js';
import { createNatsCluster, type ReleaseLookup } from '../services/server/nats/cluster-agent.js';
import { manifestDigest } from '../services/server/source-manifest.js';
import { releaseUnpacker } from '../services/server/nats/release-io.js';
import { DEFAULT_LIMITS } from '../services/server/options.js';

const HOSTS = Number(process.argv[2] ?? 200);
const DEPLOYMENTS = Number(process.argv[3] ?? 3);
const NATS = process.env.HOTDEPLOY_NATS ?? 'nats://127.0.0.1:4222';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const manifest: AppManifest = { name: 'demo', version: '1.0.0', entry: 'index.js', mode: 'handler', esm: false, port: undefined, instances: 1, env: {} };

/** A host whose workers take every release hot at once: what is measured is the transport and the unpack. */
function simulatedAgent(host: string): PlanningAgent {
  let version: string | null = null;
  return {
    host,
    plan: async () => ({ host, path: 'hot', workers: [{ pmId: 0, pid: process.pid, hot: true }] }),
    activate: async (request) => {
      version = request.version;
      return { status: 'succeeded', path: 'hot', workers: [{ host, pmId: 0, pid: process.pid, version, outcome: 'hot', durationMs: 0 }] };
    },
    workers: async () => [{ host, pmId: 0, pid: process.pid, version, status: 'online' }],
    close: async () => undefined,
  };
}

type Release = Awaited<ReturnType<ReleaseLookup>>;

function appFiles(version: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { instances: 1, port: 0 } }),
    'index.js': `const m = require('./message.js');\nmodule.exports = (req, res) => res.end(m);\n`,
    'message.js': `module.exports = ${JSON.stringify(version)};\n`,
  };
}

const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function bundle(dir: string, version: string): Promise<{ file: string; sha256: string }> {
  const root = path.join(dir, `src-${version}`);
  await writeTree(path.join(root, 'package'), appFiles(version));
  const file = path.join(dir, `${version}.tgz`);
  await create({ gzip: true, cwd: root, portable: true, file }, ['package']);
  return { file, sha256: sha256(await readFile(file)) };
}

/** The release as a delta against `base`: message.js and an empty removal list, as `hotdeploy push` sends it. */
async function delta(dir: string, version: string, base: string): Promise<NonNullable<Release['delta']>> {
  const files = appFiles(version);
  const bytes = gzipTar([
    { path: 'message.js', mode: 0o644, body: Buffer.from(files['message.js'] as string) },
    { path: '.hotdeploy/removed.json', mode: 0o644, body: Buffer.from('[]') },
  ]);
  const file = path.join(dir, `${version}.delta.tgz`);
  await writeFile(file, bytes);
  const manifestSha256 = manifestDigest({ files: Object.fromEntries(Object.entries(files).map(([rel, body]) => [rel, sha256(body)])), links: [] });
  return { base, file, sha256: sha256(bytes), manifestSha256 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'hd-fanout-'));
  const names = natsNames(`hdbench${randomBytes(4).toString('hex')}`);
  const bundles = new Map<string, Omit<Release, 'manifest'>>();
  const cluster = await createNatsCluster({
    nats: { servers: NATS }, prefix: names.prefix, prepareTimeoutMs: 300_000, applyTimeoutMs: 300_000,
    lookup: async (_app, version) => ({ ...bundles.get(version)!, manifest }),
  });
  const hosts: { loop: NatsHost; close: () => Promise<void> }[] = [];
  try {
    const t0 = Date.now();
    for (let i = 0; i < HOSTS; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, HOSTS - i) }, async (_, k) => {
        const host = `sim-${i + k}`;
        const nc = await connectNats({ servers: NATS, name: host });
        const loop = startNatsHost({
          resources: await openResources(nc, names), host, dataDir: path.join(work, host), agent: simulatedAgent(host),
          unpack: releaseUnpacker(DEFAULT_LIMITS), heartbeatMs: 30_000, logger: silent,
        });
        await loop.ready;
        hosts.push({ loop, close: async () => { await loop.close(); await nc.close(); } });
      }));
    }
    console.log(`${HOSTS} hosts connected and reading commands in ${Date.now() - t0} ms`);

    const prepared: number[] = [];
    const applied: number[] = [];
    const deltaPrepared: number[] = [];
    const deltaApplied: number[] = [];
    let previous: ActivationRequest['previous'] = null;
    for (let d = 1; d <= 2 * DEPLOYMENTS + 1; d += 1) {
      const version = `${d}.0.0`;
      // Updates alternate, bundle then delta, so a trend over the run (caches warming) favours neither.
      const asDelta = d > 1 && d % 2 === 1;
      bundles.set(version, { ...await bundle(work, version), ...(asDelta && previous ? { delta: await delta(work, version, previous.version) } : {}) });
      const request: ActivationRequest = {
        deploymentId: `bench-${d}-${randomBytes(3).toString('hex')}`, app: 'demo', version, releaseDir: '', manifest, previous, kind: 'push',
      };
      const start = performance.now();
      let allPrepared = 0;
      const result = await cluster.activate(request, (event) => {
        if (event.message.startsWith('apply:')) allPrepared = performance.now() - start;
      });
      const allApplied = performance.now() - start;
      const ok = result.hosts?.filter((h) => h.status === 'succeeded').length ?? 0;
      if (result.status !== 'succeeded' || ok !== HOSTS) throw new Error(`deployment ${version}: ${result.status}, ${ok}/${HOSTS} hosts: ${result.reason ?? ''}`);
      if (d > 1) (asDelta ? deltaPrepared : prepared).push(allPrepared);
      if (d > 1) (asDelta ? deltaApplied : applied).push(allApplied);
      console.log(`deployment ${version} (${d === 1 ? 'first start' : asDelta ? 'update as a delta' : 'update as a bundle'}): all ${HOSTS} prepared in ${allPrepared.toFixed(0)} ms, all applied in ${allApplied.toFixed(0)} ms`);
      previous = { version, releaseDir: '' };
    }
    console.log(JSON.stringify({ hosts: HOSTS, deployments: DEPLOYMENTS, cores: os.cpus().length,
      preparedMs: { median: Math.round(median(prepared)), all: prepared.map(Math.round) },
      appliedMs: { median: Math.round(median(applied)), all: applied.map(Math.round) },
      delta: { preparedMs: { median: Math.round(median(deltaPrepared)), all: deltaPrepared.map(Math.round) },
        appliedMs: { median: Math.round(median(deltaApplied)), all: deltaApplied.map(Math.round) } },
      appliedRatio: Math.round((median(applied) / median(deltaApplied)) * 100) / 100 }));
  } finally {
    for (const host of hosts) await host.close().catch(() => undefined);
    await destroyResources(cluster.resources.nc, names).catch(() => undefined);
    await cluster.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
