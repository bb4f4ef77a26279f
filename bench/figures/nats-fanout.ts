import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { create } from 'tar';
import type { ActivationRequest, AppManifest, PlanningAgent } from '../../agent/messages.js';
import type { AgentLogger } from '../../agent/pm2/logger.js';
import { connectNats } from '../../agent/nats/connect.js';
import { startNatsHost, type NatsHost } from '../../agent/nats/host-agent.js';
import { natsNames } from '../../agent/nats/protocol.js';
import { destroyResources, openResources } from '../../agent/nats/resources.js';
import { gzipTar } from '../../services/cli/tar-writer.js';
import { createNatsCluster, type ReleaseLookup } from '../../services/server/nats/cluster-agent.js';
import { releaseUnpacker } from '../../services/server/nats/release-io.js';
import { DEFAULT_LIMITS } from '../../services/server/options.js';
import { manifestDigest } from '../../services/server/source-manifest.js';
import { startNatsServer } from '../../test/helpers/nats-server.js';
import { writeTree } from '../../test/helpers/tmp.js';
import { appShape, generateApp, type Files } from '../app-gen.js';
import { runChild } from '../child.js';
import type { NatsFanoutFigure } from '../report.js';
import { ratio, summarize } from '../stats.js';
import { tempDir } from '../tmp.js';

/** The generated app every host serves: a change is its marker leaf, one file of 201. */
const MODULES = 200;
/** Hosts connected at once while the fleet is set up. */
const CONNECT_BATCH = 20;
const manifest: AppManifest = { name: 'demo', version: '1.0.0', entry: 'index.js', mode: 'handler', esm: false, port: undefined, instances: 1, env: {} };

type Release = Awaited<ReturnType<ReleaseLookup>>;

/**
 * Figure 10: fan-out over NATS JetStream. `hosts` simulated hosts, each a real NATS client of the
 * real subjects, stream, KV and object store with its own connection, durable consumer and data
 * directory, pulling what it lacks, checking its sha256 and unpacking it with the service's guarded
 * extraction; only PM2 is replaced by an agent that takes every release hot at once, so what is
 * measured is the transport and the unpack. After a first start, `updates` one-file changes of the
 * 200-module app go out as full bundles and as many as deltas against the release every host serves
 * (a few hundred bytes, the release built from the one it has by links), alternating, to the same
 * hosts in the same run. A private nats-server (JetStream, its own port and store) carries it.
 *
 * The full run measures it in a child process (`natsFanoutInChild`): the 200 hosts' connections and
 * unpacks leave the bench's own process larger, and every process it spawns after (figure 9's
 * `hotdeploy push`) slower to start. The hosts' folders go under `workDir` when one is given, and
 * stay for its owner to remove; else under a temp folder removed at the end.
 */
export async function natsFanoutFigure(hosts: number, updates: number, progress: (message: string) => void, workDir?: string): Promise<NatsFanoutFigure> {
  const nats = await startNatsServer();
  const { dir: work, cleanup } = workDir === undefined ? await tempDir('hd-bench-fanout-') : { dir: workDir, cleanup: async () => undefined };
  const names = natsNames(`hdbench${randomBytes(4).toString('hex')}`);
  const releases = new Map<string, Omit<Release, 'manifest'>>();
  const fleet: Array<{ loop: NatsHost; close: () => Promise<void> }> = [];
  // How each host got each release (its 'fetched' events): a delta update must not be a bundle's in disguise.
  const fetched = { delta: 0, bundle: 0 };
  const logger: AgentLogger = {
    info: (obj) => {
      const { event, via } = obj as { event?: string; via?: 'delta' | 'bundle' };
      if (event === 'fetched' && via) fetched[via] += 1;
    },
    warn: () => undefined,
    error: () => undefined,
  };
  try {
    const cluster = await createNatsCluster({
      nats: { servers: nats.url }, prefix: names.prefix, prepareTimeoutMs: 300_000, applyTimeoutMs: 300_000,
      lookup: async (_app, version) => {
        const release = releases.get(version);
        if (!release) throw new Error(`no release ${version}`);
        return { ...release, manifest };
      },
    });
    try {
      const t0 = performance.now();
      for (let i = 0; i < hosts; i += CONNECT_BATCH) {
        await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, hosts - i) }, async (_, k) => {
          const host = `sim-${i + k}`;
          const nc = await connectNats({ servers: nats.url, name: host });
          const loop = startNatsHost({
            resources: await openResources(nc, names), host, dataDir: path.join(work, host), agent: simulatedAgent(host),
            unpack: releaseUnpacker(DEFAULT_LIMITS), heartbeatMs: 30_000, logger,
          });
          fleet.push({ loop, close: async () => { await loop.close(); await nc.close(); } });
          await loop.ready;
        }));
      }
      const connectMs = performance.now() - t0;
      progress(`nats fan-out: ${hosts} hosts connected in ${connectMs.toFixed(0)} ms`);

      const sides = { bundle: { prepared: [] as number[], applied: [] as number[] }, delta: { prepared: [] as number[], applied: [] as number[] } };
      let firstStart = { preparedMs: 0, appliedMs: 0 };
      let bundleBytes = 0;
      let deltaBytes = 0;
      let previous: ActivationRequest['previous'] = null;
      for (let d = 0; d <= 2 * updates; d += 1) {
        const version = `${d + 1}.0.0`;
        // Updates alternate, bundle then delta, so a trend over the run (caches warming) favours neither.
        const asDelta = d > 0 && d % 2 === 0;
        const full = await bundle(work, version);
        const made = asDelta && previous ? await deltaOf(work, version, previous.version) : undefined;
        releases.set(version, { file: full.file, sha256: full.sha256, ...(made ? { delta: made.delta } : {}) });
        const request: ActivationRequest = {
          deploymentId: `bench-${d}-${randomBytes(3).toString('hex')}`, app: 'demo', version, releaseDir: '', manifest, previous, kind: 'push',
        };
        const before = { ...fetched };
        const start = performance.now();
        let preparedMs = 0;
        const result = await cluster.activate(request, (event) => {
          if (event.message.startsWith('apply:')) preparedMs = performance.now() - start;
        });
        const appliedMs = performance.now() - start;
        const ok = result.hosts?.filter((h) => h.status === 'succeeded').length ?? 0;
        if (result.status !== 'succeeded' || ok !== hosts) throw new Error(`deployment ${version}: ${result.status}, ${ok}/${hosts} hosts: ${result.reason ?? ''}`);
        const via = asDelta ? 'delta' : 'bundle';
        if (fetched[via] - before[via] !== hosts) throw new Error(`deployment ${version}: ${fetched[via] - before[via]} of ${hosts} hosts got it as a ${via}`);
        if (d === 0) {
          firstStart = { preparedMs, appliedMs };
        } else {
          const side = asDelta ? sides.delta : sides.bundle;
          side.prepared.push(preparedMs);
          side.applied.push(appliedMs);
          if (made) deltaBytes = made.bytes;
          else bundleBytes = full.bytes;
        }
        progress(`nats fan-out: ${version} (${d === 0 ? 'first start' : asDelta ? 'a delta' : 'a full bundle'}) prepared on every host in ${preparedMs.toFixed(0)} ms, applied in ${appliedMs.toFixed(0)} ms`);
        previous = { version, releaseDir: '' };
      }
      const applied = { bundle: summarize(sides.bundle.applied), delta: summarize(sides.delta.applied) };
      return {
        hosts, updates, files: Object.keys(appFiles('m-0')).length, bundleBytes, deltaBytes, connectMs: Math.round(connectMs),
        firstStart: { preparedMs: Math.round(firstStart.preparedMs), appliedMs: Math.round(firstStart.appliedMs) },
        bundle: { prepared: summarize(sides.bundle.prepared), applied: applied.bundle },
        delta: { prepared: summarize(sides.delta.prepared), applied: applied.delta },
        ratio: ratio(applied.bundle.median, applied.delta.median),
      };
    } finally {
      for (const host of fleet) await host.close().catch(() => undefined);
      await destroyResources(cluster.resources.nc, names).catch(() => undefined);
      await cluster.close();
    }
  } finally {
    await nats.stop();
    await cleanup();
  }
}

/**
 * Figure 10 in a fresh Node process, its hosts' folders under `workDir` (kept: on an ext4 without a
 * journal, files made within minutes of a mass deletion are several times slower to make, see
 * unpack.ts, so the full run removes them once every figure is measured).
 */
export function natsFanoutInChild(hosts: number, updates: number, workDir: string): Promise<NatsFanoutFigure> {
  return runChild<NatsFanoutFigure>('nats-fanout-child.js', [String(hosts), String(updates), workDir], 600_000);
}

/** A host whose workers take every release hot at once. */
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

function appFiles(marker: string): Files {
  return generateApp({ modules: MODULES, marker, name: 'demo', instances: 1 });
}

const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The whole release as `npm pack` lays it out, as a curl upload or `push --npm-pack` sends it. */
async function bundle(dir: string, version: string): Promise<{ file: string; sha256: string; bytes: number }> {
  const root = path.join(dir, `src-${version}`);
  await writeTree(path.join(root, 'package'), appFiles(version));
  const file = path.join(dir, `${version}.tgz`);
  await create({ gzip: true, cwd: root, portable: true, file }, ['package']);
  const bytes = await readFile(file);
  return { file, sha256: sha256(bytes), bytes: bytes.length };
}

/** The release as a delta against `base`: the changed marker leaf and an empty removal list, as `hotdeploy push` sends it. */
async function deltaOf(dir: string, version: string, base: string): Promise<{ delta: NonNullable<Release['delta']>; bytes: number }> {
  const files = appFiles(version);
  const leaf = appShape(MODULES).markerLeaf;
  const bytes = gzipTar([
    { path: leaf, mode: 0o644, body: Buffer.from(files[leaf] as string) },
    { path: '.hotdeploy/removed.json', mode: 0o644, body: Buffer.from('[]') },
  ]);
  const file = path.join(dir, `${version}.delta.tgz`);
  await writeFile(file, bytes);
  const manifestSha256 = manifestDigest({ files: Object.fromEntries(Object.entries(files).map(([rel, body]) => [rel, sha256(body)])), links: [] });
  return { delta: { base, file, sha256: sha256(bytes), manifestSha256 }, bytes: bytes.length };
}
