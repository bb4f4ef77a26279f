import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { WorkerOutcome, WorkerState } from '../../agent/messages.js';
import type { Deployment, DeploymentKind } from './deployments.js';
import type { EventBus } from './events.js';
import type { HostView } from './nats/host-views.js';

/** What the service knows at scrape time; each read has its own deadline (a silent agent costs a scrape at most that). */
export interface MetricsSource {
  apps(): Promise<string[]>;
  releases(app: string): Promise<number>;
  hosts(): Promise<HostView[]>;
  workers(app: string): Promise<WorkerState[]>;
}

/** One upload's life: counted in flight from its first byte, queued until it is being unpacked. */
export interface UploadTrack {
  unpacking(): void;
  /** The stored release's bundle size and whether it was new; `undefined` when the upload was refused. */
  done(result: { bytes: number; created: boolean } | undefined): void;
}

const KINDS: DeploymentKind[] = ['push', 'activate', 'rollback', 'reconcile'];
const FINAL: Deployment['status'][] = ['succeeded', 'failed', 'rolled-back'];
const OUTCOMES: WorkerOutcome[] = ['hot', 'unchanged', 'started', 'reloaded', 'failed', 'rolled-back'];

/**
 * The service's Prometheus metrics (prom-client, in a registry of this server's own). Counters and
 * histograms follow the deployment events and the uploads as they happen; gauges of releases,
 * agents and workers are read from the store and the host agents when scraped.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly deployments = this.counter('hotdeploy_deployments_total', 'Finished deployments', ['app', 'kind', 'status']);
  private readonly deploymentSeconds = new Histogram({
    name: 'hotdeploy_deployment_duration_seconds', help: 'From a deployment\'s start (after waiting in its app\'s queue) to its end',
    labelNames: ['app', 'kind', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [this.registry],
  });
  private readonly workerOutcomes = this.counter('hotdeploy_worker_outcomes_total', 'How each worker ended a deployment', ['app', 'outcome']);
  private readonly uploads = this.counter('hotdeploy_uploads_total', 'Uploads by outcome: created (a new release), exists (same bytes again), rejected', ['app', 'outcome']);
  private readonly uploadBytes = this.counter('hotdeploy_upload_bytes_total', 'Bundle bytes of accepted uploads', ['app']);
  private readonly unpackSeconds = new Histogram({
    name: 'hotdeploy_unpack_duration_seconds', help: 'Receiving and unpacking a new release (the two overlap: the unpacker reads the bytes as they arrive), until it is stored',
    labelNames: ['app'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry],
  });
  private readonly inFlight = this.gauge('hotdeploy_uploads_in_flight', 'Uploads being received, queued or unpacked', []);
  private readonly queued = this.gauge('hotdeploy_uploads_queued', 'Uploads waiting for their turn to be unpacked', []);
  private readonly releases = this.gauge('hotdeploy_releases', 'Releases stored', ['app']);
  private readonly agentsConnected = this.gauge('hotdeploy_agents_connected', 'Host agents alive (heartbeat within three intervals; the in-process agent always)', []);
  private readonly agentsLagging = this.gauge('hotdeploy_agents_lagging', 'Host agents with an app not on its current release', []);
  private readonly agentUp = this.gauge('hotdeploy_agent_up', '1 when the host agent is alive', ['host', 'transport']);
  private readonly agentLagging = this.gauge('hotdeploy_agent_lagging', '1 when an app on the host is not on its current release', ['host']);
  private readonly agentHeartbeatAge = this.gauge('hotdeploy_agent_heartbeat_age_seconds', 'Since the host\'s last heartbeat (NATS hosts)', ['host']);
  private readonly workerMemory = this.gauge('hotdeploy_worker_memory_bytes', 'Resident memory of a worker (PM2\'s last sample)', ['app', 'host', 'worker']);
  private readonly workerCpu = this.gauge('hotdeploy_worker_cpu_percent', 'CPU of a worker in percent of one core (PM2\'s last sample)', ['app', 'host', 'worker']);
  private readonly workerRestarts = this.counter('hotdeploy_worker_restarts_total', 'PM2\'s restart count of a worker (pm_id)', ['app', 'host', 'worker']);
  private readonly workerLoopP99 = this.gauge('hotdeploy_worker_event_loop_lag_p99_seconds', '99th percentile of how late the worker\'s event loop ran, over its last ~10 s', ['app', 'host', 'worker']);
  private readonly workerLoopMax = this.gauge('hotdeploy_worker_event_loop_lag_max_seconds', 'Longest the worker\'s event loop was late, over its last ~10 s', ['app', 'host', 'worker']);
  private active = 0;
  private waiting = 0;
  private scrape: Promise<string> | undefined;

  constructor(private readonly source: MetricsSource) {}

  /** Counts every finished deployment of `bus`; returns the unsubscribe. */
  follow(bus: EventBus): () => void {
    return bus.subscribe((event) => {
      if (event.type === 'finished' && event.deployment) this.finished(event.deployment);
    });
  }

  upload(app: string): UploadTrack {
    this.active += 1;
    this.waiting += 1;
    let stage: 'queued' | 'unpacking' | 'done' = 'queued';
    let started = 0;
    return {
      unpacking: () => {
        if (stage !== 'queued') return;
        stage = 'unpacking';
        this.waiting -= 1;
        started = performance.now();
      },
      done: (result) => {
        if (stage === 'done') return;
        if (stage === 'queued') this.waiting -= 1;
        else if (result?.created) this.unpackSeconds.observe({ app }, (performance.now() - started) / 1000);
        stage = 'done';
        this.active -= 1;
        this.uploads.inc({ app, outcome: result === undefined ? 'rejected' : result.created ? 'created' : 'exists' });
        if (result) this.uploadBytes.inc({ app }, result.bytes);
      },
    };
  }

  /** The text exposition, after reading the gauges of the moment; scrapes at the same time share one reading. */
  text(): Promise<string> {
    this.scrape ??= this.refresh().then(() => this.registry.metrics()).finally(() => { this.scrape = undefined; });
    return this.scrape;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private finished(d: Deployment): void {
    this.seed(d.app, [d.kind]);
    this.deployments.inc({ app: d.app, kind: d.kind, status: d.status });
    const from = Date.parse(d.startedAt ?? d.createdAt);
    const to = Date.parse(d.finishedAt ?? new Date().toISOString());
    if (Number.isFinite(from) && Number.isFinite(to)) this.deploymentSeconds.observe({ app: d.app, kind: d.kind, status: d.status }, Math.max(0, to - from) / 1000);
    for (const worker of d.workers) this.workerOutcomes.inc({ app: d.app, outcome: worker.outcome });
  }

  /** Every series an alert may ask `increase()` of exists from zero, so its first event counts. */
  private seed(app: string, kinds: DeploymentKind[]): void {
    for (const kind of kinds) for (const status of FINAL) this.deployments.inc({ app, kind, status }, 0);
    for (const outcome of OUTCOMES) this.workerOutcomes.inc({ app, outcome }, 0);
  }

  private async refresh(): Promise<void> {
    this.inFlight.set(this.active);
    this.queued.set(this.waiting);
    const [apps, hosts] = await Promise.all([this.source.apps(), this.source.hosts()]);
    const [releases, workers] = await Promise.all([
      Promise.all(apps.map((app) => this.source.releases(app))),
      Promise.all(apps.map((app) => this.source.workers(app))),
    ]);
    this.releases.reset();
    apps.forEach((app, i) => {
      this.seed(app, KINDS);
      this.releases.set({ app }, releases[i] ?? 0);
    });
    this.hosts(hosts);
    for (const g of [this.workerMemory, this.workerCpu, this.workerLoopP99, this.workerLoopMax]) g.reset();
    this.workerRestarts.reset();
    apps.forEach((app, i) => {
      for (const w of workers[i] ?? []) this.worker(app, w);
    });
  }

  private hosts(hosts: HostView[]): void {
    for (const g of [this.agentUp, this.agentLagging, this.agentHeartbeatAge]) g.reset();
    this.agentsConnected.set(hosts.filter((h) => h.alive).length);
    this.agentsLagging.set(hosts.filter((h) => h.lagging).length);
    for (const h of hosts) {
      this.agentUp.set({ host: h.host, transport: h.transport }, h.alive ? 1 : 0);
      this.agentLagging.set({ host: h.host }, h.lagging ? 1 : 0);
      if (h.lastHeartbeat) this.agentHeartbeatAge.set({ host: h.host }, Math.max(0, Date.now() - Date.parse(h.lastHeartbeat)) / 1000);
    }
  }

  private worker(app: string, w: WorkerState): void {
    const labels = { app, host: w.host, worker: String(w.pmId) };
    const stats = w.stats;
    if (!stats) return;
    this.workerRestarts.inc(labels, stats.restarts);
    if (stats.memoryBytes !== undefined) this.workerMemory.set(labels, stats.memoryBytes);
    if (stats.cpuPercent !== undefined) this.workerCpu.set(labels, stats.cpuPercent);
    if (stats.loopDelayP99Ms !== undefined) this.workerLoopP99.set(labels, stats.loopDelayP99Ms / 1000);
    if (stats.loopDelayMaxMs !== undefined) this.workerLoopMax.set(labels, stats.loopDelayMaxMs / 1000);
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
}
