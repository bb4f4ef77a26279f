/**
 * Every error the deploy service answers with, by stable code (fastify's FST_ERR_* pattern).
 * A code is never reused once published; tests assert `code` and `statusCode`, not the message.
 * Every error response is `{ statusCode, code, message }` (build-server.ts's error handler).
 */
export const DeployErrorCodes = {
  // Authentication and scope
  DEPLOY_ERR_UNAUTHORIZED: [401, 'a valid bearer token is required'],
  DEPLOY_ERR_FORBIDDEN: [403, 'the token does not cover this app or action'],
  // Requests the route schemas or the router refuse
  DEPLOY_ERR_VALIDATION: [400, 'the request is invalid'],
  DEPLOY_ERR_INVALID_APP: [400, 'app names match ^[a-z0-9][a-z0-9-]{0,62}$'],
  DEPLOY_ERR_INVALID_VERSION: [400, 'versions match ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'],
  DEPLOY_ERR_INVALID_JSON: [400, 'the request body is not valid JSON'],
  DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE: [415, 'bundles are sent as application/gzip or application/octet-stream'],
  DEPLOY_ERR_BODY_TOO_LARGE: [413, 'the request body is too large'],
  DEPLOY_ERR_ROUTE_NOT_FOUND: [404, 'no such endpoint'],
  DEPLOY_ERR_BAD_REQUEST: [400, 'the request is not valid HTTP or its URL is malformed'],
  DEPLOY_ERR_REQUEST_TIMEOUT: [408, 'the request did not arrive in time'],
  DEPLOY_ERR_URI_TOO_LONG: [414, 'a part of the request URL is too long'],
  DEPLOY_ERR_HEADERS_TOO_LARGE: [431, 'the request headers are too large'],
  DEPLOY_ERR_APP_NOT_FOUND: [404, 'no such app'],
  DEPLOY_ERR_RELEASE_NOT_FOUND: [404, 'no such release'],
  DEPLOY_ERR_DEPLOYMENT_NOT_FOUND: [404, 'no such deployment'],
  DEPLOY_ERR_HOST_NOT_FOUND: [404, 'no such host in the cluster'],
  // The upload itself
  DEPLOY_ERR_EMPTY_BUNDLE: [400, 'the request has no body'],
  DEPLOY_ERR_BUNDLE_TOO_LARGE: [413, 'the bundle is larger than maxBundleBytes'],
  DEPLOY_ERR_SHA256_MISMATCH: [400, 'the bundle does not match X-Bundle-Sha256'],
  DEPLOY_ERR_UPLOAD_ABORTED: [400, 'the client aborted the upload'],
  DEPLOY_ERR_UPLOAD_TIMEOUT: [408, 'the upload stalled'],
  DEPLOY_ERR_BUSY: [429, 'the service is taking as many uploads as it can; try again after Retry-After seconds'],
  DEPLOY_ERR_VERSION_CONFLICT: [409, 'this version was already stored with other files'],
  // The archive (checked before anything becomes visible)
  DEPLOY_ERR_NOT_GZIP: [422, 'the bundle is not gzip data'],
  DEPLOY_ERR_BAD_ARCHIVE: [422, 'the bundle is not a readable tar archive'],
  DEPLOY_ERR_UNSAFE_PATH: [422, 'an entry path is absolute or contains ..'],
  DEPLOY_ERR_LINK_ESCAPE: [422, 'a link points outside the release'],
  DEPLOY_ERR_ENTRY_TYPE: [422, 'only files, directories and links inside the release are allowed'],
  DEPLOY_ERR_TOO_MANY_FILES: [422, 'the bundle has more entries than maxFiles'],
  DEPLOY_ERR_TOO_DEEP: [422, 'the bundle nests deeper than maxDepth'],
  DEPLOY_ERR_UNPACKED_TOO_LARGE: [413, 'the bundle unpacks to more than maxUnpackedBytes'],
  DEPLOY_ERR_EXTRACT_TIMEOUT: [422, 'unpacking the bundle took longer than its deadline'],
  DEPLOY_ERR_RESERVED_PATH: [422, 'the bundle contains a top-level .hotdeploy/, which hotdeploy reserves'],
  // Deltas (PUT …/releases/:version/delta): a release built from the current one plus the changes
  DEPLOY_ERR_DELTA_BASE_NOT_FOUND: [409, 'the delta\'s base release does not exist (send the full bundle)'],
  DEPLOY_ERR_DELTA_BASE_NOT_CURRENT: [409, 'the delta\'s base is not the current release (diff against the current one, or send the full bundle)'],
  DEPLOY_ERR_DELTA_MISMATCH: [422, 'the base plus the delta do not make the declared file manifest'],
  DEPLOY_ERR_DELTA_UNKNOWN_PATH: [422, 'the delta removes a path the base release does not have'],
  // The app's manifest (agent/manifest.ts HOT_ERR_* codes)
  DEPLOY_ERR_MANIFEST: [422, 'package.json is missing or is not valid JSON'],
  DEPLOY_ERR_SETTINGS: [422, 'the hotdeploy settings are invalid'],
  DEPLOY_ERR_ENTRY: [422, 'the entry module does not exist inside the release'],
  DEPLOY_ERR_NO_PORT: [422, 'nothing gives this release a port to listen on'],
  // Dependencies installed on the host (services/server/install/)
  DEPLOY_ERR_INSTALL: [422, 'installing the dependencies failed'],
  DEPLOY_ERR_LOCKFILE: [422, 'dependencies are installed from an npm lockfile only (package-lock.json or npm-shrinkwrap.json)'],
  // Deployments
  DEPLOY_ERR_NO_ROLLBACK_TARGET: [409, 'there is no earlier good release to roll back to'],
  DEPLOY_ERR_CANARY: [400, 'canary is a number of workers or hosts (n, up to 1000) or a percentage (n%, up to 100), watched 100 ms to 24 h, on a push that activates'],
  DEPLOY_ERR_HOST_RUNNING: [409, 'the host\'s agent still answers: stop it before retiring the host'],
  // A host's refusal, recorded on the deployment (`hosts[].code`), never an HTTP answer
  DEPLOY_ERR_PORT_CONFLICT: [409, 'the release\'s port belongs to another app or process on the host'],
  DEPLOY_ERR_SHUTTING_DOWN: [503, 'the server is shutting down'],
  // Faults
  DEPLOY_ERR_CLUSTER_UNAVAILABLE: [503, 'the NATS cluster is unreachable'],
  DEPLOY_ERR_STORAGE: [500, 'the release store could not write to disk'],
  DEPLOY_ERR_INTERNAL: [500, 'internal error'],
} as const satisfies Record<string, readonly [number, string]>;

export type DeployErrorCode = keyof typeof DeployErrorCodes;

export class DeployError extends Error {
  readonly code: DeployErrorCode;
  readonly statusCode: number;
  /** What was appended to the code's message (kept so the error can cross a thread and be rebuilt). */
  readonly detail: string | undefined;

  constructor(code: DeployErrorCode, detail?: string, options?: { cause?: unknown }) {
    const [statusCode, message] = DeployErrorCodes[code];
    super(detail ? `${message}: ${detail}` : message, options);
    this.name = 'DeployError';
    this.code = code;
    this.statusCode = statusCode;
    this.detail = detail;
  }
}

/** By code, not instanceof (the same library can be loaded twice). */
export function isDeployError(err: unknown, code?: DeployErrorCode): err is DeployError {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && c in DeployErrorCodes && (code === undefined || c === code);
}

/**
 * A disk fault (ENOSPC, EIO, ...) as a client reads it: the errno and the call, never the server's
 * own paths, which the fs error's message names. The log keeps them: the fault is the cause.
 */
export function storageError(err: NodeJS.ErrnoException): DeployError {
  return new DeployError('DEPLOY_ERR_STORAGE', `${err.code ?? 'an error'} in ${err.syscall ?? 'a file operation'}`, { cause: err });
}

/** The stable code a deployment records for a host: the agent's refusals by their service-side name. */
export function hostCode(agentCode: string | undefined): string | undefined {
  return agentCode === 'HOT_ERR_PORT_CONFLICT' ? 'DEPLOY_ERR_PORT_CONFLICT' : agentCode;
}

/** The body of every error response. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
}
