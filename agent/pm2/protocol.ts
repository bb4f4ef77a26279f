import type { ProbeResult, ProbeSpec, UpdateResult, WindowReport, WindowSpec } from '../messages.js';
import { isRecord } from '../common/guards.js';

/**
 * The wire protocol between the host agent and the workers it runs under PM2: one discriminated
 * union each way (after Vite's HMR protocol). Agent → worker travels as PM2's
 * `sendDataToProcessId` packet `{ type: 'process:msg', topic: TOPIC, data }`; worker → agent as
 * `process.send({ type: 'process:msg', data })`, which PM2's daemon republishes on its bus. A trial
 * start (a plain `child_process.fork`) receives the same worker → agent messages directly.
 *
 * A worker started with HOTDEPLOY_AGENT_SOCKET also connects to the agent directly (worker-links.ts)
 * once the agent offered it a link (`link`, over PM2 only): the same messages, one JSON object per
 * line, without the hop through PM2's daemon.
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
  /** A dry run of `update` (HostedApp.plan): nothing disposed or evaluated (a cluster deploy's prepare). */
  | { kind: 'plan'; requestId: string; releaseDir: string }
  | { kind: 'ping'; requestId: string }
  /**
   * Connect to the agent's socket and say `nonce` in `hello`. Sent only through PM2, which delivers
   * it to the process PM2 runs as that pm_id: a worker honours it only from there, never from the socket.
   */
  | { kind: 'link'; nonce: string };

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
  /** First line on a direct link (worker-links.ts): which worker this connection is, and the agent's nonce. */
  | (WorkerIdentity & { kind: 'hello'; nonce: string })
  /** Sent before each module the worker evaluates for an update: what a worker stuck in one was at. */
  | (WorkerIdentity & { kind: 'loading'; requestId: string; module: string })
  | (WorkerIdentity & { kind: 'boot-failed'; error: { message: string; code?: string; stack?: string } });

/** Epoch milliseconds with sub-millisecond fractions (the phases of a hot deploy are a few ms). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

export function isAgentMessage(value: unknown): value is AgentMessage {
  if (!isRecord(value)) return false;
  const kind = value.kind as AgentMessage['kind'];
  if (kind === 'link') return typeof value.nonce === 'string';
  if (typeof value.requestId !== 'string') return false;
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
    case 'loading':
      return typeof value.requestId === 'string' && typeof value.module === 'string';
    case 'probed':
      return typeof value.requestId === 'string' && isRecord(value.probe);
    case 'health-window':
      return typeof value.app === 'string' && isRecord(value.report);
    case 'hello':
      return typeof value.nonce === 'string';
    case 'booted':
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

/** The longest line a link may send (1 MiB): past it the connection is closed. */
export const MAX_LINE = 1024 * 1024;

/**
 * Splits a stream's text into lines and parses each; unparsable lines are dropped (`onLine` is
 * never called with undefined). Linear: each chunk is searched once, and the pieces of an unfinished
 * line are kept aside and joined once when its newline arrives. A line longer than `maxLine`
 * characters calls `onOverflow` and ends the reader (the caller closes the connection).
 */
export function lineReader(onLine: (value: unknown) => void, onOverflow: () => void = () => undefined, maxLine = MAX_LINE): (chunk: string) => void {
  let pieces: string[] = [];
  let pending = 0;
  let over = false;
  const overflow = (): void => {
    over = true;
    pieces = [];
    onOverflow();
  };
  return (chunk) => {
    if (over) return;
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf('\n', start)) !== -1) {
      if (pending + end - start > maxLine) return overflow();
      const piece = chunk.slice(start, end);
      const line = pieces.length === 0 ? piece : pieces.join('') + piece;
      pieces = [];
      pending = 0;
      start = end + 1;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      onLine(value);
      if (over) return;
    }
    if (start < chunk.length) {
      pending += chunk.length - start;
      if (pending > maxLine) return overflow();
      pieces.push(start === 0 ? chunk : chunk.slice(start));
    }
  };
}

// Values off the wire may carry kinds this build does not know; they are ignored, not thrown on.
function unknownKind(kind: never): false {
  void kind;
  return false;
}
