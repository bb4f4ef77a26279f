export { readManifest } from './manifest.js';
export { HotError, HotErrorCodes, isHotError } from './errors.js';
export type * from './messages.js';
export { hostApp } from './runtime/host-app.js';
export type { HostAppOptions, HostedApp, RuntimeLogger } from './runtime/host-app.js';
