import { HotError } from '../errors.js';
import type { ActivationResult, AppManifest, CanarySpec, DeploymentKind, HealthWindowEvent, HostPlan, WorkerState } from '../messages.js';
import type { NodeTarget } from '../common/node-target.js';

/**
 * The wire protocol between the deploy service and host agents over NATS JetStream.
 * Commands go service → host on JetStream (`<prefix>.cmd.<host>`, one durable consumer per host,
 * so a host that was down reads what it missed); replies go host → service on core NATS
 * (`<prefix>.reply.<deploymentId>`, the service subscribes before it sends). Host state and the
 * desired release per app live in one KV bucket; bundles in one object store bucket.
 */
export interface NatsNames {
  prefix: string;
  stream: string;
  kvBucket: string;
  objBucket: string;
  cmdSubject(host: string): string;
  replySubject(deploymentId: string): string;
  /** Where a host forwards its workers' health-window reports (core NATS, host → service). */
  healthSubject(host: string): string;
  /** Core NATS request/reply: is this host's agent there right now (answered at once when it is not). */
  pingSubject(host: string): string;
  durable(host: string): string;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** Host names and prefixes become subject tokens, KV keys and consumer names: keep them plain. */
export function assertToken(value: string, what: string): string {
  if (!TOKEN.test(value)) throw new HotError('HOT_ERR_NATS_SETTINGS', `${what} ${JSON.stringify(value)} must match ${TOKEN}`);
  return value;
}

export function natsNames(prefix = 'hotdeploy'): NatsNames {
  assertToken(prefix, 'prefix');
  return {
    prefix,
    stream: `${prefix}_cmd`,
    kvBucket: `${prefix}_state`,
    objBucket: `${prefix}_bundles`,
    cmdSubject: (host) => `${prefix}.cmd.${host}`,
    replySubject: (deploymentId) => `${prefix}.reply.${deploymentId}`,
    healthSubject: (host) => `${prefix}.health.${host}`,
    pingSubject: (host) => `${prefix}.ping.${host}`,
    durable: (host) => `host_${host}`,
  };
}

export const hostKey = (host: string): string => `hosts.${host}`;
export const desiredKey = (app: string): string => `apps.${app}`;

/** A release as hosts see it: where its bundle is and what it must hash to. */
export interface ReleaseRef {
  app: string;
  version: string;
  /** sha256 (hex) of the .tgz, as the service recorded it at upload. */
  sha256: string;
  /** Object name in the bundle bucket. */
  object: string;
  manifest: AppManifest;
  kind: DeploymentKind;
  /** The node_modules the service installed for it (the bundle has none); hosts need no registry. */
  install?: ReleaseInstall;
  /**
   * Set when the release was pushed as a delta against `base`: a host that has `base` pulls this
   * object (the changed files) instead of the whole bundle, and checks what it builds against
   * `manifestSha256`, as the service did; any other host, or a failed delta, takes the full bundle.
   */
  delta?: ReleaseDelta;
}

export interface ReleaseDelta {
  base: string;
  object: string;
  /** sha256 (hex) of the delta object's bytes. */
  sha256: string;
  /** The digest of the release's own files (the service's source-manifest.ts). */
  manifestSha256: string;
}

/**
 * A release's installed node_modules as their own object (`<app>/node_modules/<key>.tgz`), one per
 * install key: a host takes them from the object store, or links them from a release of its own with
 * the same key, and refuses them when its Node cannot run what they were built for.
 */
export interface ReleaseInstall {
  key: string;
  node: NodeTarget;
  object: string;
  /** sha256 (hex) of the object's bytes. */
  sha256: string;
}

/** `apps.<app>` in the KV bucket: the release every host should serve (moved when a deployment succeeds). */
export interface DesiredRelease extends ReleaseRef {
  deploymentId: string;
  updatedAt: string;
}

/** `hosts.<host>` in the KV bucket, rewritten at every heartbeat. */
export interface HostRecord {
  host: string;
  /** hotdeploy's own version on that host. */
  hotdeploy: string;
  pid: number;
  startedAt: string;
  heartbeatAt: number;
  heartbeatMs: number;
  apps: Record<string, { version: string; workers: WorkerState[] }>;
  /** The apps this host runs, when its host settings name them; absent: every app. */
  runs?: string[];
  /**
   * False from the agent's start until it has converged on the desired releases and reads commands:
   * until then its apps may still be moving on their own. Absent (older agents): ready.
   */
  ready?: boolean;
}

/** A host's answer on its ping subject. */
export interface PingAnswer {
  host: string;
  pid: number;
}

/** Past `expiresAt` a command is stale: a host coming back acknowledges it and does nothing. */
export type HostCommand =
  /**
   * `dryRun`: `hotdeploy plan`. The host answers the same plan but keeps nothing: a release it does
   * not have is unpacked into its temporary area and removed after, and no apply follows.
   */
  | { type: 'prepare'; deploymentId: string; release: ReleaseRef; expiresAt: number; dryRun?: boolean }
  /** `canary`: this host is one of a canary's hosts and watches all its workers before it answers. */
  | { type: 'apply'; deploymentId: string; release: ReleaseRef; strategy: 'auto' | 'reload'; expiresAt: number; canary?: CanarySpec }
  | { type: 'abort'; deploymentId: string }
  /** Serve the desired release of every app (KV); answers when `deploymentId` is set. */
  | { type: 'converge'; deploymentId?: string };

export interface ConvergedApp {
  app: string;
  version: string;
  result: ActivationResult;
}

export type HostReply =
  | { type: 'prepared'; deploymentId: string; host: string; plan: HostPlan }
  | { type: 'prepare-failed'; deploymentId: string; host: string; reason: string; code?: string }
  | { type: 'applied'; deploymentId: string; host: string; result: ActivationResult }
  | { type: 'converged'; deploymentId: string; host: string; apps: ConvergedApp[] };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(value: HostCommand | HostReply | HostRecord | DesiredRelease | HealthWindowEvent | PingAnswer): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decode(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

function isRelease(value: unknown): value is ReleaseRef {
  const r = value as Partial<ReleaseRef> | null;
  return typeof r === 'object' && r !== null && typeof r.app === 'string' && typeof r.version === 'string'
    && typeof r.sha256 === 'string' && typeof r.object === 'string' && typeof r.manifest === 'object' && r.manifest !== null;
}

/** Values off the wire may be malformed or of a newer build: those are ignored, never thrown on. */
export function parseCommand(data: Uint8Array): HostCommand | undefined {
  const v = decode(data);
  if (!v) return undefined;
  const type = v.type as HostCommand['type'];
  switch (type) {
    case 'prepare':
      return typeof v.deploymentId === 'string' && isRelease(v.release) && typeof v.expiresAt === 'number' ? v as HostCommand : undefined;
    case 'apply':
      return typeof v.deploymentId === 'string' && isRelease(v.release) && typeof v.expiresAt === 'number'
        && (v.strategy === 'auto' || v.strategy === 'reload') ? v as HostCommand : undefined;
    case 'abort':
      return typeof v.deploymentId === 'string' ? v as HostCommand : undefined;
    case 'converge':
      return v.deploymentId === undefined || typeof v.deploymentId === 'string' ? v as HostCommand : undefined;
    default:
      return unknownType(type);
  }
}

export function parseReply(data: Uint8Array): HostReply | undefined {
  const v = decode(data);
  if (!v || typeof v.deploymentId !== 'string' || typeof v.host !== 'string') return undefined;
  const type = v.type as HostReply['type'];
  switch (type) {
    case 'prepared':
      return typeof v.plan === 'object' && v.plan !== null ? v as HostReply : undefined;
    case 'prepare-failed':
      return typeof v.reason === 'string' ? v as HostReply : undefined;
    case 'applied':
      return typeof v.result === 'object' && v.result !== null ? v as HostReply : undefined;
    case 'converged':
      return Array.isArray(v.apps) ? v as HostReply : undefined;
    default:
      return unknownType(type);
  }
}

/** A forwarded health-window report; `host` must be the one its subject names. */
export function parseHealthEvent(data: Uint8Array, host: string): HealthWindowEvent | undefined {
  const v = decode(data);
  if (!v || v.host !== host || typeof v.app !== 'string' || typeof v.version !== 'string' || typeof v.pmId !== 'number') return undefined;
  const report = v.report as Partial<HealthWindowEvent['report']> | undefined;
  if (typeof report !== 'object' || report === null || typeof report.tripped !== 'boolean') return undefined;
  return v as unknown as HealthWindowEvent;
}

export function parseJson<T>(data: Uint8Array): T | undefined {
  return decode(data) as T | undefined;
}

function unknownType(type: never): undefined {
  void type;
  return undefined;
}
