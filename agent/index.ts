export { readManifest } from './manifest.js';
export { HotError, HotErrorCodes, isHotError } from './errors.js';
export type * from './messages.js';
