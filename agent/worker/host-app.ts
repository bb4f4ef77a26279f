import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppMode, UpdateResult } from '../messages.js';
import * as agentApi from '../index.js';

/**
 * The runtime's `hostApp` (issue 2), as the bootstrap uses it. Declared here so the bootstrap builds
 * on its own; the runtime's export is the implementation.
 */
export interface HostedApp {
  readonly name: string;
  readonly dir: string;
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  update(dir: string): Promise<UpdateResult>;
  close(): Promise<void>;
}

export type HostAppFn = (options: { name: string; dir: string; mode?: AppMode; drainTimeoutMs?: number; chdir?: boolean }) => Promise<HostedApp>;

export const hostApp = (agentApi as unknown as { hostApp: HostAppFn }).hostApp;
