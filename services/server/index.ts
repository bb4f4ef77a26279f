export { buildServer } from './build-server.js';
export { startServer, createLocalAgents, type RunningServer } from './start-server.js';
export { DeployError, DeployErrorCodes, isDeployError, type DeployErrorCode, type ErrorBody } from './errors.js';
export type { ServerOptions, TokenConfig, TokenAction } from './options.js';
export type { ReleaseMeta, Pointers } from './release-store.js';
export type { Deployment, DeploymentKind, DeploymentStatus, HostOutcome } from './deployments.js';
export type { DeploymentEvent, DeploymentEventType } from './events.js';
export type { FileHashManifest } from './file-hashes.js';
