import type { ProbeResult, ProbeSpec, UpdateResult, WindowReport, WindowSpec } from '../messages.js';
import { isRecord } from '../common/guards.js';

/**
 * The wire protocol between the host agent and the workers it runs under PM2: one discriminated
 * union each way (STYLE.md, after Vite's HMR protocol). Agent → worker travels as PM2's
 * `sendDataToProcessId` packet `{ type: 'process:msg', topic: TOPIC, data }`; worker → agent as
 * `process.send({ type: 'process:msg', data })`, which PM2's daemon republishes on its bus. A trial
 * start (a plain `child_process.fork`) receives the same worker → agent messages directly.
 *
 * A worker started with HOTDEPLOY_AGENT_SOCKET also connects to the agent directly (worker-links.ts):
 * the same messages, one JSON object per line, without the hop through PM2's daemon.
 */
export const TOPIC = 'hotdeploy';

export type AgentMessage =
  /**
   * `probe`: after a hot or unchanged outcome, the worker probes its handler and answers with the
   * result; `window`: after a hot swap (and a passing probe), it watches its answers for that long.
   */
  | { kind: 'update'; requestId: string; version: string; releaseDir: string; probe?: ProbeSpec; window?: WindowSpec }
  /** The health probe on its own (after a start or a reload), through the worker's own handler. */
  | { kind: 'probe'; requestId: string; probe: ProbeSpec }
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
  /** `receivedAt` / `answeredAt`: the worker's clock (epoch ms with fractions), for the benchmark's phases. */
  | (WorkerIdentity & { kind: 'updated'; requestId: string; result: UpdateResult; probe?: ProbeResult; receivedAt?: number; answeredAt?: number })
  | (WorkerIdentity & { kind: 'probed'; requestId: string; probe: ProbeResult })
  /** Unasked: how the health window after the hot swap of `app` to `version` ended (tripped or passed). */
  | (WorkerIdentity & { kind: 'health-window'; app: string; report: WindowReport })
  | (WorkerIdentity & { kind: 'planned'; requestId: string; result: UpdateResult })
  /**
   * `loopDelay`: how late the worker's event loop ran lately (worker/loop-delay.ts), for metrics.
   * `releases`: the release directories this worker's live code came from (HostedApp.releasesInUse).
   */
  | (WorkerIdentity & { kind: 'pong'; requestId: string; loopDelay?: { p99Ms: number; maxMs: number }; releases?: string[] })
  | (WorkerIdentity & { kind: 'booted' })
  /** First line on a direct link (worker-links.ts): which worker this connection is. */
  | (WorkerIdentity & { kind: 'hello' })
  | (WorkerIdentity & { kind: 'boot-failed'; error: { message: string; code?: string; stack?: string } });

/** Epoch milliseconds with sub-millisecond fractions (the phases of a hot deploy are a few ms). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

export function isAgentMessage(value: unknown): value is AgentMessage {
  if (!isRecord(value) || typeof value.requestId !== 'string') return false;
  const kind = value.kind as AgentMessage['kind'];
  switch (kind) {
    case 'update':
      return typeof value.version === 'string' && typeof value.releaseDir === 'string';
    case 'plan':
      return typeof value.releaseDir === 'string';
    case 'probe':
      return isRecord(value.probe) && typeof value.probe.path === 'string' && typeof value.probe.timeoutMs === 'number';
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
    case 'probed':
      return typeof value.requestId === 'string' && isRecord(value.probe);
    case 'health-window':
      return typeof value.app === 'string' && isRecord(value.report);
    case 'booted':
    case 'hello':
      return true;
    case 'boot-failed':
      return isRecord(value.error);
    default:
      return unknownKind(kind);
  }
}

/** The direct link's framing: one JSON value per line (JSON.stringify escapes newlines in strings). */
export function encodeLine(message: AgentMessage | WorkerMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/** Splits a stream's text into lines and parses each; unparsable lines are dropped (`onLine(undefined)` is never called). */
export function lineReader(onLine: (value: unknown) => void): (chunk: string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      onLine(value);
    }
  };
}


// Values off the wire may carry kinds this build does not know; they are ignored, not thrown on.
function unknownKind(kind: never): false {
  void kind;
  return false;
}
