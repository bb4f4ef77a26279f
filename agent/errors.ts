/**
 * Every error the agent side raises, by stable code (fastify's FST_ERR_* pattern).
 * Identity checks go by `code`, never `instanceof`: the same library can be loaded twice from two
 * release directories, or once from the service and once inside a worker.
 */
export const HotErrorCodes = {
  HOT_ERR_MANIFEST: 'package.json is missing or is not valid JSON',
  HOT_ERR_SETTINGS: 'the hotdeploy settings are invalid',
  HOT_ERR_ENTRY: 'the entry module does not exist inside the release',
  HOT_ERR_HANDLER: 'the entry does not export an app hotdeploy can host',
  HOT_ERR_ALREADY_HOSTED: 'this release directory is already hosted in this process',
  HOT_ERR_CLOSED: 'the hosted app is closed',
  HOT_ERR_ACCEPT: 'a module.hot.accept or decline dependency does not resolve',
  // The PM2 host agent and the worker bootstrap (agent/pm2, agent/worker).
  HOT_ERR_PM2_DOWN: 'the PM2 daemon is not reachable',
  HOT_ERR_TIMEOUT: 'an operation did not finish in time',
  HOT_ERR_WORKER_STATE: 'the worker cannot tell which release to host',
  HOT_ERR_WORKER_GONE: 'the worker closed its link to the agent before it answered',
  HOT_ERR_PM2_NAME_TAKEN: 'a PM2 process hotdeploy did not start has the name hotdeploy gives the app',
  HOT_ERR_PORT_CONFLICT: 'the release\'s port is taken on this host',
  HOT_ERR_UPDATE_HUNG: 'a worker did not finish an update within its deadline',
  // The NATS transport (agent/nats).
  HOT_ERR_NATS_UNREACHABLE: 'the NATS server is not reachable',
  HOT_ERR_NATS_SETTINGS: 'the NATS settings are invalid',
  HOT_ERR_BUNDLE_MISSING: 'the bundle is not in the object store',
  HOT_ERR_BUNDLE_DIGEST: 'the bundle read from the object store does not match its sha256',
  HOT_ERR_HOST_SETTINGS: 'the host settings file is invalid',
  HOT_ERR_HOST_RUNNING: 'the host\'s agent is still running',
  HOT_ERR_NODE_TARGET: 'this host cannot run the node_modules the service installed for the release',
} as const;

export type HotErrorCode = keyof typeof HotErrorCodes;

export class HotError extends Error {
  readonly code: HotErrorCode;

  constructor(code: HotErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${HotErrorCodes[code]}: ${detail}` : HotErrorCodes[code], options);
    this.name = 'HotError';
    this.code = code;
  }
}

export function isHotError(err: unknown, code?: HotErrorCode): err is HotError {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && c.startsWith('HOT_ERR_') && (code === undefined || c === code);
}
