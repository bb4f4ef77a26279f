import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { assertNever } from '../common/guards.js';
import { releasesInUse } from '../common/releases-in-use.js';
import type { NodeTarget } from '../common/node-target.js';
import { isWatchedAgent } from '../messages.js';
import type { ActivationRequest, ActivationResult, CanarySpec, PlanningAgent } from '../messages.js';
import { defaultLogger, type AgentLogger } from '../pm2/logger.js';
import { HostReleases, type ReleaseUnpacker } from './host-releases.js';
import {
  assertToken, desiredKey, encode, hostKey, parseCommand, parseJson,
  type ConvergedApp, type DesiredRelease, type HostCommand, type HostRecord, type HostReply, type ReleaseRef,
} from './protocol.js';
import { hostRuns, withHostSettings, type HostSettings } from './host-settings.js';
import { answerPings } from './presence.js';
import { listKeys, type ClusterResources } from './resources.js';

export interface NatsHostOptions {
  resources: ClusterResources;
  host: string;
  dataDir: string;
  /** Drives the host's workers: the PM2 agent (`createPm2Agent`), the same one `serve` runs in-process. */
  agent: PlanningAgent;
  unpack: ReleaseUnpacker;
  /** Default 5 000 ms; the service calls a host gone after three missed beats. */
  heartbeatMs?: number;
  /** Releases kept per app on this host (default 10); the served one is never removed. */
  keepReleases?: number;
  /** What this host's Node runs (default: this process's); installed node_modules must match it. */
  nodeTarget?: NodeTarget;
  hotdeployVersion?: string;
  logger?: AgentLogger;
  /** This host's own settings per app and the apps it runs (`host-settings.ts`); they never leave the host. */
  settings?: HostSettings;
}

export interface NatsHost {
  readonly host: string;
  /** Resolves once the start-up convergence is done and commands are being read. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** A command's handling may take a reload's time; JetStream redelivers only past this. */
const ACK_WAIT_MS = 10 * 60_000;

/**
 * The host agent over NATS: one durable consumer on `<prefix>.cmd.<host>`, commands handled
 * one at a time and acknowledged once done, so a host that was down, or killed mid-command, reads
 * them again. Stale prepare/apply commands (the service gave up) are acknowledged and skipped; the
 * host then converges to the desired release of every app (KV), at start and on `converge`.
 */
export function startNatsHost(options: NatsHostOptions): NatsHost {
  const { resources, agent } = options;
  const { names, kv, js, jsm } = resources;
  const host = assertToken(options.host, 'host name');
  const log = options.logger ?? defaultLogger();
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const releases = new HostReleases(options.dataDir, resources.bundles, options.unpack, options.nodeTarget,
    (fetched) => log.info({ event: 'fetched', host, ...fetched }, fetched.via === 'delta' ? 'release built from its delta' : 'release unpacked from its bundle'));
  const startedAt = new Date().toISOString();
  let messages: ConsumerMessages | undefined;
  let pings: ReturnType<typeof answerPings> | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let closed = false;
  /** Converged at start and reading commands (`HostRecord.ready`). */
  let reading = false;
  let loop: Promise<void> = Promise.resolve();

  const reply = (message: HostReply): void => {
    if (!resources.nc.isClosed()) resources.nc.publish(names.replySubject(message.deploymentId), encode(message));
  };

  // The service decides what a tripped health window means (auto-rollback): forward every report.
  const unwatch = isWatchedAgent(agent) ? agent.onHealthWindow((event) => {
    if (!closed && !resources.nc.isClosed()) resources.nc.publish(names.healthSubject(host), encode({ ...event, host }));
  }) : undefined;

  function request(ref: ReleaseRef, deploymentId: string, releaseDir: string, strategy: 'auto' | 'reload', canary?: CanarySpec): ActivationRequest {
    const served = releases.current(ref.app);
    const previous = served && served.version !== ref.version ? served : null;
    const manifest = withHostSettings(options.settings, ref.app, ref.manifest);
    return { deploymentId, app: ref.app, version: ref.version, releaseDir, manifest, previous, kind: ref.kind, strategy, ...(canary ? { canary } : {}) };
  }

  async function activate(ref: ReleaseRef, deploymentId: string, strategy: 'auto' | 'reload', canary?: CanarySpec): Promise<ActivationResult> {
    const releaseDir = await releases.ensure(ref);
    const result = await agent.activate(request(ref, deploymentId, releaseDir, strategy, canary));
    if (result.status === 'succeeded') {
      await releases.setServed(ref.app, { version: ref.version, releaseDir });
      await prune(ref.app);
    }
    void publishState();
    return result;
  }

  /** Retention: never a directory this host's workers still run code from (they are asked first). */
  async function prune(app: string): Promise<void> {
    try {
      const removed = await releases.prune(app, options.keepReleases ?? 10, async () => releasesInUse(await agent.workers(app)));
      if (removed.length > 0) log.info({ event: 'pruned', host, app, versions: removed }, 'old releases removed');
    } catch (err) {
      log.warn({ event: 'prune-failed', host, app, err: String(err) }, 'old releases kept');
    }
  }

  async function handle(command: HostCommand): Promise<void> {
    switch (command.type) {
      case 'prepare':
        try {
          const dryRun = (releaseDir: string) => agent.plan(request(command.release, command.deploymentId, releaseDir, 'auto'));
          const plan = command.dryRun ? await releases.peek(command.release, dryRun) : await dryRun(await releases.ensure(command.release));
          reply({ type: 'prepared', deploymentId: command.deploymentId, host, plan: { ...plan, host } });
        } catch (err) {
          const e = err as { message?: string; code?: string };
          reply({ type: 'prepare-failed', deploymentId: command.deploymentId, host, reason: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) });
        }
        return;
      case 'apply': {
        const result = await activate(command.release, command.deploymentId, command.strategy, command.canary)
          .catch((err: unknown): ActivationResult => ({ status: 'failed', path: 'none', reason: (err as Error).message, workers: [] }));
        reply({ type: 'applied', deploymentId: command.deploymentId, host, result });
        return;
      }
      case 'abort':
        // Nothing changed on this host at prepare; the unpacked release stays, unused.
        return;
      case 'converge': {
        const apps = await converge();
        if (command.deploymentId) reply({ type: 'converged', deploymentId: command.deploymentId, host, apps });
        return;
      }
      default:
        return assertNever(command);
    }
  }

  /** Every app whose desired release (KV) this host does not serve is activated (hot if it can). */
  async function converge(): Promise<ConvergedApp[]> {
    const done: ConvergedApp[] = [];
    for (const key of await listKeys(resources, desiredKey('*'))) {
      const entry = await kv.get(key);
      const desired = entry?.value.length ? parseJson<DesiredRelease>(entry.value) : undefined;
      if (!desired || !hostRuns(options.settings, desired.app) || releases.current(desired.app)?.version === desired.version) continue;
      log.info({ event: 'converge', host, app: desired.app, version: desired.version }, 'converging to the desired release');
      const result = await activate(desired, desired.deploymentId, 'auto')
        .catch((err: unknown): ActivationResult => ({ status: 'failed', path: 'none', reason: (err as Error).message, workers: [] }));
      done.push({ app: desired.app, version: desired.version, result });
    }
    return done;
  }

  async function onMessage(msg: JsMsg): Promise<void> {
    const command = parseCommand(msg.data);
    if (!command) {
      log.warn({ event: 'bad-command', host, subject: msg.subject }, 'ignoring a malformed command');
    } else if ('expiresAt' in command && command.expiresAt < Date.now()) {
      log.info({ event: 'stale-command', host, type: command.type, deploymentId: command.deploymentId }, 'skipping a command the service gave up on');
    } else {
      log.info({ event: 'command', host, type: command.type, deploymentId: command.deploymentId }, 'command');
      await handle(command).catch((err: unknown) => log.error({ event: 'command-failed', host, err: String(err) }, 'command failed'));
    }
    if (!closed) msg.ack();
  }

  async function publishState(): Promise<void> {
    if (closed || resources.nc.isClosed()) return;
    const apps: HostRecord['apps'] = {};
    for (const [app, served] of releases.all()) {
      const workers = await agent.workers(app).catch(() => []);
      apps[app] = { version: served.version, workers };
    }
    const record: HostRecord = {
      host, hotdeploy: options.hotdeployVersion ?? 'unknown', pid: process.pid, startedAt,
      heartbeatAt: Date.now(), heartbeatMs, apps, ready: reading, ...(options.settings?.runs ? { runs: options.settings.runs } : {}),
    };
    await kv.put(hostKey(host), encode(record)).catch((err: unknown) => log.warn({ event: 'heartbeat-failed', host, err: String(err) }, 'heartbeat failed'));
  }

  async function start(): Promise<void> {
    await releases.recover();
    await publishState();
    heartbeat = setInterval(() => void publishState(), heartbeatMs);
    heartbeat.unref();
    await converge();
    const durable = names.durable(host);
    await jsm.consumers.add(names.stream, {
      durable_name: durable, filter_subject: names.cmdSubject(host), ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All, ack_wait: nanos(ACK_WAIT_MS),
    }).catch(async (err: unknown) => {
      if (!(await jsm.consumers.info(names.stream, durable).then(() => true, () => false))) throw err;
    });
    if (closed) return;
    const consumer = await js.consumers.get(names.stream, durable);
    messages = await consumer.consume({ max_messages: 16 });
    loop = (async () => {
      for await (const msg of messages!) {
        if (closed) break;
        await onMessage(msg);
      }
    })();
    // Answered only from here on: a host that answers reads the prepare the service sends next.
    pings = answerPings(resources, host);
    reading = true;
    void publishState();
    log.info({ event: 'host-ready', host, stream: names.stream, durable }, 'reading commands');
  }

  const ready = start();
  ready.catch((err: unknown) => log.error({ event: 'host-start-failed', host, err: String(err) }, 'the host agent did not start'));

  async function close(): Promise<void> {
    closed = true;
    unwatch?.();
    clearInterval(heartbeat);
    await ready.catch(() => undefined);
    pings?.unsubscribe();
    await messages?.close().catch(() => undefined);
    await loop.catch(() => undefined);
  }

  return { host, ready, close };
}
