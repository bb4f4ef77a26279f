import cluster from 'node:cluster';
import { realpath } from 'node:fs/promises';
import { HotError } from '../errors.js';
import { readManifest } from '../manifest.js';
import type { ProbeResult, ProbeSpec, UpdateResult, WindowSpec } from '../messages.js';
import { describeError } from '../runtime/error-location.js';
import { probe } from '../runtime/probe.js';
import { assertNever } from '../common/guards.js';
import { SerialQueue } from '../common/serial-queue.js';
import { TOPIC, isAgentMessage, preciseNow } from '../pm2/protocol.js';
import type { AgentMessage, WorkerMessage } from '../pm2/protocol.js';
import { readStateFile } from '../pm2/state.js';
import { connectAgentLink } from './agent-link.js';
import type { AgentLink } from './agent-link.js';
import { hostApp } from './host-app.js';
import type { HostedApp } from './host-app.js';
import { HealthWindow } from './health-window.js';
import { listen } from './http-server.js';
import { loopDelay, startLoopDelay } from './loop-delay.js';
import type { OwnedServer } from './http-server.js';
import { reportingLoads } from './load-report.js';

/**
 * The script PM2 runs (cluster mode) for every deployed app, from a path that never changes: PM2
 * resolves symlinks when it starts an app (pm2 #1663, #2963), so a script inside a release would pin
 * that release across reloads. Which release to host comes from the agent's pointer file
 * (HOTDEPLOY_STATE_FILE), read at every start; a trial start names its release directly.
 *
 * Environment: HOTDEPLOY_APP, HOTDEPLOY_STATE_FILE or (trial) HOTDEPLOY_TRIAL_DIR +
 * HOTDEPLOY_TRIAL_VERSION, PORT, HOTDEPLOY_KILL_TIMEOUT_MS. PM2 sets `pm_id`.
 */

const pmId = process.env.pm_id === undefined ? -1 : Number(process.env.pm_id);
const trial = process.env.HOTDEPLOY_TRIAL_DIR !== undefined;
const killTimeoutMs = Number(process.env.HOTDEPLOY_KILL_TIMEOUT_MS ?? 5_000);

let version = '';
let app: HostedApp | undefined;
let server: OwnedServer | undefined;
let shuttingDown = false;
let link: AgentLink | undefined;
/** The release being booted (a realpath), where a boot error's location is relative to. */
let bootDir: string | undefined;
let healthWindow: HealthWindow | undefined;
/**
 * How long a cluster worker stays after its server closed. Node's cluster primary may have handed
 * it a connection before it read the worker's `close`; the worker's cluster code sends such a
 * connection back (the primary gives it to another worker), but only while the process lives. One
 * that exits at once leaves that connection open in the primary, unanswered, and under reloads with fresh connections
 * arriving some do hang that way (test/pm2/reload.answers-every-connection checks none does).
 */
const HANDOFF_LINGER_MS = 250;
/** Updates apply one at a time, in arrival order. */
const updates = new SerialQueue();

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send({ type: 'process:msg', data: message }, undefined, {}, () => resolve());
  });
}

async function target(): Promise<{ app: string; version: string; releaseDir: string }> {
  const name = process.env.HOTDEPLOY_APP;
  if (!name) throw new HotError('HOT_ERR_WORKER_STATE', 'HOTDEPLOY_APP is not set');
  if (trial) {
    return { app: name, version: process.env.HOTDEPLOY_TRIAL_VERSION ?? '', releaseDir: process.env.HOTDEPLOY_TRIAL_DIR ?? '' };
  }
  const file = process.env.HOTDEPLOY_STATE_FILE;
  if (!file) throw new HotError('HOT_ERR_WORKER_STATE', 'HOTDEPLOY_STATE_FILE is not set');
  const state = await readStateFile(file);
  // PM2 keeps the env of the app's first start across reloads; the pointer carries the release's own.
  Object.assign(process.env, state.env);
  return state;
}

function portOf(manifestPort: number | undefined): number {
  // A trial start runs beside the live workers: it must not compete for their port.
  if (trial) return 0;
  // The agent sets PORT from the port it resolved (the bundle's, or the host's own setting for the
  // app, which wins); the bundle's own setting is read only when PORT is not set.
  const port = process.env.PORT !== undefined && process.env.PORT !== '' ? Number(process.env.PORT) : manifestPort;
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HotError('HOT_ERR_SETTINGS', 'a handler-mode app needs hotdeploy.port or a PORT variable');
  }
  return port;
}

async function boot(): Promise<void> {
  const release = await target();
  version = release.version;
  bootDir = await realpath(release.releaseDir).catch(() => release.releaseDir);
  const manifest = await readManifest(release.releaseDir);
  app = await hostApp({ name: release.app, dir: release.releaseDir, mode: manifest.mode, chdir: true, main: true });
  if (manifest.mode === 'handler') server = await listen(app.handler, portOf(manifest.port));
}

function failed(err: unknown, from: string, to: string): UpdateResult {
  const error = describeError(err, [to, from]);
  return { outcome: 'failed', from, to, outdated: [], disposed: [], accepted: [], reason: error.message, error, durationMs: 0 };
}

type Reply = (message: WorkerMessage) => Promise<void>;

async function update(message: Extract<AgentMessage, { kind: 'update' }>, receivedAt: number, reply: Reply): Promise<void> {
  let result: UpdateResult;
  const from = app?.dir ?? '';
  try {
    const hosted = app;
    if (!hosted) throw new Error('the app is not hosted yet');
    // Each module evaluated is announced first: a worker stuck in one cannot say so later.
    const loading = (module: string): void => void reply({ kind: 'loading', requestId: message.requestId, module, pmId, pid: process.pid, version });
    result = await reportingLoads(message.releaseDir, loading, () => hosted.update(message.releaseDir));
  } catch (err) {
    result = failed(err, from, message.releaseDir);
  }
  // `pm2 logs <app>` shows what went wrong in full; the agent gets the one-line reason.
  if (result.outcome === 'failed') console.error(`hotdeploy: ${appName()}: the update to ${message.version} failed: ${result.error?.stack ?? result.error?.message ?? result.reason}`);
  const moved = result.outcome === 'hot' || result.outcome === 'unchanged';
  if (moved) version = message.version;
  // A newer swap (a swap back included) ends the window of the version it replaced.
  if (result.outcome === 'hot') healthWindow?.cancel();
  const checked = moved && message.probe ? await runProbe(message.probe) : undefined;
  if (result.outcome === 'hot' && message.window && (checked === undefined || checked.ok)) watch(message.window, reply);
  await reply({ kind: 'updated', requestId: message.requestId, result, ...(checked ? { probe: checked } : {}), pmId, pid: process.pid, version, receivedAt, answeredAt: preciseNow() });
}

/** The health probe through the app's own handler (handler mode); process mode keeps its readiness gate. */
async function runProbe(spec: ProbeSpec): Promise<ProbeResult> {
  if (!app) return { ok: false, status: 0, bodyStart: '', durationMs: 0, error: 'the app is not hosted yet' };
  if (app.mode === 'process') return { ok: true, status: 0, bodyStart: '', durationMs: 0, skipped: 'process mode: the app listens itself' };
  return probe(app.handler, spec);
}

/** A health window for the version just swapped in; a newer swap cancels the one running. */
function watch(spec: WindowSpec, reply: Reply): void {
  healthWindow?.cancel();
  const watched = version;
  healthWindow = new HealthWindow(spec, server?.watchAnswers, () => app?.releasesInUse() ?? [], (report) => {
    healthWindow = undefined;
    if (report.tripped) console.error(`hotdeploy: ${appName()}@${watched}: the health window tripped: ${report.errors5xx} 5xx answer(s) and ${report.exceptions} uncaught exception(s) in ${report.requests} answer(s) within ${report.elapsedMs} ms (first: ${report.sample ?? '?'})`);
    void reply({ kind: 'health-window', app: appName(), report, pmId, pid: process.pid, version: watched });
  });
}

function appName(): string {
  return process.env.HOTDEPLOY_APP ?? '?';
}

async function plan(message: Extract<AgentMessage, { kind: 'plan' }>, reply: Reply): Promise<void> {
  let result: UpdateResult;
  try {
    if (!app) throw new Error('the app is not hosted yet');
    result = await app.plan(message.releaseDir);
  } catch (err) {
    result = failed(err, app?.dir ?? '', message.releaseDir);
  }
  await reply({ kind: 'planned', requestId: message.requestId, result, pmId, pid: process.pid, version });
}

/** PM2's IPC: `{ topic, data }` from the agent through the daemon, or PM2's own `shutdown`. */
function onMessage(packet: unknown): void {
  if (packet === 'shutdown') return void shutdown();
  if (typeof packet !== 'object' || packet === null) return;
  const { topic, data } = packet as { topic?: unknown; data?: unknown };
  if (topic !== TOPIC) return;
  // A link offer is honoured only from PM2 (the agent's nonce for this pm_id), never from the socket.
  if (isAgentMessage(data) && data.kind === 'link') return linkTo(data.nonce);
  handle(data, send);
}

/** The direct link to the agent (agent/pm2/worker-links.ts), with the nonce it sent this worker. */
function linkTo(nonce: string): void {
  const socketPath = process.env.HOTDEPLOY_AGENT_SOCKET;
  if (!socketPath || trial || pmId < 0 || shuttingDown || !app) return;
  link?.close();
  link = connectAgentLink(socketPath, { kind: 'hello', pmId, pid: process.pid, version, nonce }, handle);
}

/** One request from the agent, through PM2 or the direct link; `reply` answers the way it came. */
function handle(data: unknown, reply: Reply): void {
  if (!isAgentMessage(data)) return;
  switch (data.kind) {
    case 'update': {
      const receivedAt = preciseNow();
      void updates.run(() => update(data, receivedAt, reply));
      return;
    }
    case 'plan':
      // In the update queue: the plan answers for the release the worker will have by then.
      void updates.run(() => plan(data, reply));
      return;
    case 'probe':
      // After any update queued before it: the probe answers for the version the agent last sent.
      void updates.run(async () => reply({ kind: 'probed', requestId: data.requestId, probe: await runProbe(data.probe), pmId, pid: process.pid, version }));
      return;
    case 'ping':
      void reply({ kind: 'pong', requestId: data.requestId, pmId, pid: process.pid, version, ...withLoopDelay(), releases: app?.releasesInUse() ?? [] });
      return;
    case 'link':
      return;
    default:
      assertNever(data);
  }
}

function withLoopDelay(): { loopDelay?: { p99Ms: number; maxMs: number } } {
  const delay = loopDelay();
  return delay ? { loopDelay: delay } : {};
}

/** SIGINT (PM2's kill signal) or PM2's `shutdown` message: stop accepting, drain, exit before kill_timeout. */
async function shutdown(): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  // No more updates: the agent reaches a worker without a link through PM2, which knows it is stopping.
  link?.close();
  const deadline = Math.max(killTimeoutMs - 500, 200);
  const hard = setTimeout(() => process.exit(0), deadline + 200);
  hard.unref();
  await server?.close(deadline);
  await app?.close().catch(() => undefined);
  if (cluster.isWorker) await new Promise((resolve) => setTimeout(resolve, HANDOFF_LINGER_MS));
  process.exit(0);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void shutdown());
  // A trial belongs to the agent that forked it: if that process goes, so does the trial.
  if (trial) process.on('disconnect', () => process.exit(0));
  process.on('message', onMessage);
  try {
    // A trial announces the modules it evaluates: the agent names the one a trial is stuck in.
    if (trial) await reportingLoads(process.env.HOTDEPLOY_TRIAL_DIR ?? '', (module) => void send({ kind: 'loading', requestId: 'boot', module, pmId, pid: process.pid, version }), boot);
    else await boot();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const error = { ...describeError(err, bootDir ? [bootDir] : []), ...(typeof code === 'string' ? { code } : {}) };
    console.error(`hotdeploy: ${appName()}@${version} did not start: ${error.message}\n${error.stack ?? ''}`);
    await send({ kind: 'boot-failed', pmId, pid: process.pid, version, error });
    process.exit(1);
  }
  if (!trial) startLoopDelay();
  // PM2's wait_ready: the raw 'ready' string is what its daemon waits for before routing traffic.
  process.send?.('ready');
  await send({ kind: 'booted', pmId, pid: process.pid, version });
}

void main();
