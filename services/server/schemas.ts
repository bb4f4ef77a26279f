/** Route schemas: input is validated at the edge, so handlers assume valid input (as fastify intends). */
export const APP_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
/** Semver (build metadata `+` included) or any name of letters, digits, `.`, `_`, `-`; never `.` or `..`. */
export const VERSION_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$';

export const appParams = {
  type: 'object',
  required: ['app'],
  properties: { app: { type: 'string', pattern: APP_PATTERN } },
} as const;

export const releaseParams = {
  type: 'object',
  required: ['app', 'version'],
  properties: { app: { type: 'string', pattern: APP_PATTERN }, version: { type: 'string', pattern: VERSION_PATTERN } },
} as const;

/** The optional sha256 a bundle upload (or dry run) is checked against. */
export const bundleHeaders = {
  type: 'object',
  properties: { 'x-bundle-sha256': { type: 'string', pattern: '^[A-Fa-f0-9]{64}$' } },
} as const;

/** Per-deployment choices on push, activate and rollback (`DeploymentOptions`). */
export const deployChoices = {
  strategy: { type: 'string', enum: ['auto', 'reload-all'] },
  allowUnreachable: { type: 'boolean' },
} as const;

export const waitQuery = {
  type: 'object',
  properties: { wait: { type: 'boolean', default: true }, ...deployChoices },
} as const;

export interface AppParams { app: string }
export interface ReleaseParams { app: string; version: string }
export interface DeployChoices { strategy?: 'auto' | 'reload-all'; allowUnreachable?: boolean }
export interface WaitQuery extends DeployChoices { wait: boolean }

/** The choices a request made, without the ones it left out. */
export function choicesOf(query: DeployChoices): DeployChoices {
  return { ...(query.strategy ? { strategy: query.strategy } : {}), ...(query.allowUnreachable ? { allowUnreachable: true } : {}) };
}
