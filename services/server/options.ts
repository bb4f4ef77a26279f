import path from 'node:path';
import type { FastifyServerOptions } from 'fastify';
import type { HostAgent } from '../../agent/messages.js';
import type { NatsClusterOptions } from './nats/cluster-agent.js';

export type TokenAction = 'push' | 'activate' | 'read' | 'agent';

/**
 * A bearer token as configured: `apps` omitted (or `['*']`) covers every app, `actions` omitted all.
 * Either the token itself or its sha256 (hex), so a config file need not hold the secret.
 */
export type TokenConfig = {
  name: string;
  apps?: string[];
  actions?: TokenAction[];
} & ({ token: string; sha256?: never } | { sha256: string; token?: never });

export interface ServerOptions {
  dataDir: string;
  /** Default 7070; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Serve the API and the dashboard over HTTPS with this certificate (chain) and key, PEM. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** false: no in-process PM2 agent (startServer only). */
  localAgent?: boolean;
  /** The local agent's PM2 home (default `<dataDir>/pm2`, a daemon hotdeploy starts with a clean environment). */
  pm2Home?: string;
  /** Names of this process's environment variables passed on to every app (beside the documented base). */
  passEnv?: string[];
  /** How long a worker may take to apply an update before it is killed and replaced (ms, default 10 000). */
  updateTimeoutMs?: number;
  /** How long a trial start may take to be ready before it is killed (ms, default 10 000). */
  trialTimeoutMs?: number;
  /** Without tokens the ones stored in `<dataDir>/tokens.json` are used (startServer creates an admin one). */
  tokens?: TokenConfig[];
  /** Releases kept per app (default 10); the current and previous ones are never pruned. */
  keep?: number;
  maxBundleBytes?: number;
  maxUnpackedBytes?: number;
  maxFiles?: number;
  /** Folder depth limit, at most 64 (deep nesting is a DoS: 400 levels take seconds to extract). */
  maxDepth?: number;
  /** Deadline for unpacking one bundle (ms). */
  extractTimeoutMs?: number;
  /** An upload that sends nothing for this long is answered 408 and cut (ms). */
  uploadIdleTimeoutMs?: number;
  /** Uploads received and unpacked at once (default 8). */
  maxUploads?: number;
  /**
   * Uploads waiting for one of those places (default 16), each for at most `uploadIdleTimeoutMs`;
   * past either, 429 DEPLOY_ERR_BUSY with Retry-After.
   */
  maxQueuedUploads?: number;
  /** Host agents the deployments fan out to (agent/messages.ts `HostAgent`). */
  agents?: HostAgent[];
  /**
   * npm's settings for installing bundles' dependencies on the host (an npmrc file: registry, scoped
   * registries and their tokens, proxy, cafile); without it npm's defaults, never the machine's.
   */
  npmrc?: string;
  /** Deadline of one `npm ci` (ms, default 600 000). */
  installTimeoutMs?: number;
  /** Drive host agents on other machines over NATS JetStream (startServer only); without it nothing changes. */
  nats?: Omit<NatsClusterOptions, 'lookup'>;
  /** fastify's logger option; tests pass false. */
  logger?: FastifyServerOptions['logger'];
}

export interface Limits {
  maxBundleBytes: number;
  maxUnpackedBytes: number;
  maxFiles: number;
  maxDepth: number;
  extractTimeoutMs: number;
  uploadIdleTimeoutMs: number;
  maxUploads: number;
  maxQueuedUploads: number;
}

export interface ResolvedOptions extends Limits {
  dataDir: string;
  keep: number;
  agents: HostAgent[];
  npmrc: string | undefined;
  installTimeoutMs: number | undefined;
}

export const DEFAULT_LIMITS: Limits = {
  maxBundleBytes: 200 * 1024 * 1024,
  maxUnpackedBytes: 1024 * 1024 * 1024,
  maxFiles: 50_000,
  maxDepth: 64,
  extractTimeoutMs: 120_000,
  uploadIdleTimeoutMs: 30_000,
  maxUploads: 8,
  maxQueuedUploads: 16,
};

export function resolveOptions(options: ServerOptions): ResolvedOptions {
  const keep = options.keep ?? 10;
  if (!Number.isInteger(keep) || keep < 1) throw new TypeError('keep must be an integer of at least 1');
  const maxDepth = Math.min(options.maxDepth ?? DEFAULT_LIMITS.maxDepth, 64);
  return {
    dataDir: path.resolve(options.dataDir),
    keep,
    agents: options.agents ?? [],
    npmrc: options.npmrc === undefined ? undefined : path.resolve(options.npmrc),
    installTimeoutMs: options.installTimeoutMs,
    maxBundleBytes: options.maxBundleBytes ?? DEFAULT_LIMITS.maxBundleBytes,
    maxUnpackedBytes: options.maxUnpackedBytes ?? DEFAULT_LIMITS.maxUnpackedBytes,
    maxFiles: options.maxFiles ?? DEFAULT_LIMITS.maxFiles,
    maxDepth,
    extractTimeoutMs: options.extractTimeoutMs ?? DEFAULT_LIMITS.extractTimeoutMs,
    uploadIdleTimeoutMs: options.uploadIdleTimeoutMs ?? DEFAULT_LIMITS.uploadIdleTimeoutMs,
    maxUploads: positiveInteger('maxUploads', options.maxUploads ?? DEFAULT_LIMITS.maxUploads),
    maxQueuedUploads: nonNegativeInteger('maxQueuedUploads', options.maxQueuedUploads ?? DEFAULT_LIMITS.maxQueuedUploads),
  };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be an integer of at least 1`);
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be an integer of at least 0`);
  return value;
}
