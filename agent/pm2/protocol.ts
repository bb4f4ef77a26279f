import type { UpdateResult } from '../messages.js';

/**
 * The wire protocol between the host agent and the workers it runs under PM2: one discriminated
 * union each way (STYLE.md, after Vite's HMR protocol). Agent → worker travels as PM2's
 * `sendDataToProcessId` packet `{ type: 'process:msg', topic: TOPIC, data }`; worker → agent as
 * `process.send({ type: 'process:msg', data })`, which PM2's daemon republishes on its bus. A trial
 * start (a plain `child_process.fork`) receives the same worker → agent messages directly.
 */
export const TOPIC = 'hotdeploy';

export type AgentMessage =
  | { kind: 'update'; requestId: string; version: string; releaseDir: string }
  /** A dry run of `update` (HostedApp.plan): nothing disposed or evaluated (issue 7's prepare). */
  | { kind: 'plan'; requestId: string; releaseDir: string }
  | { kind: 'ping'; requestId: string };

interface WorkerIdentity {
  pmId: number;
  pid: number;
  /** The version this worker serves now. */
  version: string;
}

export type WorkerMessage =
  | (WorkerIdentity & { kind: 'updated'; requestId: string; result: UpdateResult })
  | (WorkerIdentity & { kind: 'planned'; requestId: string; result: UpdateResult })
  | (WorkerIdentity & { kind: 'pong'; requestId: string })
  | (WorkerIdentity & { kind: 'booted' })
  | (WorkerIdentity & { kind: 'boot-failed'; error: { message: string; code?: string; stack?: string } });

export function isAgentMessage(value: unknown): value is AgentMessage {
  if (!isRecord(value) || typeof value.requestId !== 'string') return false;
  const kind = value.kind as AgentMessage['kind'];
  switch (kind) {
    case 'update':
      return typeof value.version === 'string' && typeof value.releaseDir === 'string';
    case 'plan':
      return typeof value.releaseDir === 'string';
    case 'ping':
      return true;
    default:
      return unknownKind(kind);
  }
}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (!isRecord(value) || typeof value.pmId !== 'number' || typeof value.pid !== 'number') return false;
  if (typeof value.version !== 'string') return false;
  const kind = value.kind as WorkerMessage['kind'];
  switch (kind) {
    case 'updated':
    case 'planned':
      return typeof value.requestId === 'string' && isRecord(value.result);
    case 'pong':
      return typeof value.requestId === 'string';
    case 'booted':
      return true;
    case 'boot-failed':
      return isRecord(value.error);
    default:
      return unknownKind(kind);
  }
}

/** Exhaustiveness: a new kind added to a union fails to compile here until it is handled. */
export function assertNever(value: never): never {
  throw new Error(`unhandled message kind ${JSON.stringify(value)}`);
}

// Values off the wire may carry kinds this build does not know; they are ignored, not thrown on.
function unknownKind(kind: never): false {
  void kind;
  return false;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
