import type * as childProcessModule from 'node:child_process';
import type * as cryptoModule from 'node:crypto';
import type * as fsModule from 'node:fs';
import type * as httpModule from 'node:http';
import { createRequire } from 'node:module';
import type * as utilModule from 'node:util';

// Builtins the CLI requires instead of importing. An ES import of a builtin module builds its
// namespace by reading every export, lazy ones included: node:http's `WebSocket` loads undici
// (~40 ms), node:util's lazy exports load its diff and abort-signal internals (~10 ms), node:fs's
// load its promises and watchers (~4 ms), and child_process loads dgram. A push's start-up is
// mostly Node's own, so these count.
const require = createRequire(import.meta.url);

export const fs = require('node:fs') as typeof fsModule;
export const http = require('node:http') as typeof httpModule;
export const util = require('node:util') as typeof utilModule;
/** Loaded when first used (~7 ms): a push's first request is on its way by then. */
export const crypto = (): typeof cryptoModule => require('node:crypto') as typeof cryptoModule;
/** Loaded when a command first runs git or npm. */
export const childProcess = (): typeof childProcessModule => require('node:child_process') as typeof childProcessModule;
