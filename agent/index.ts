export { readManifest } from './manifest.js';
export { HotError, HotErrorCodes, isHotError } from './errors.js';
export type * from './messages.js';
export { createPm2Agent } from './pm2/agent.js';
export { describeUpdate } from './pm2/activation.js';
export type { Pm2Agent, Pm2AgentOptions } from './pm2/agent.js';
export { Pm2Client } from './pm2/client.js';
export type { AgentLogger } from './pm2/logger.js';
