// The runtime module itself rather than `agent/index.ts`: a worker must not load the PM2 agent side.
export { hostApp } from '../runtime/host-app.js';
export type { HostedApp } from '../runtime/host-app.js';
