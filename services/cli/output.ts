import type cliProgressModule from 'cli-progress';
import type TableClass from 'cli-table3';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import type { WorkerReport } from '../../agent/messages.js';

/** Where a command writes: results to `out`, progress and notes to `err` (so `--json` stays parseable). */
export interface Io {
  out: Writable & { isTTY?: boolean };
  err: Writable & { isTTY?: boolean };
}

export function writeJson(io: Io, value: unknown): void {
  io.out.write(JSON.stringify(value, null, 2) + '\n');
}

export function writeLine(stream: Writable, line = ''): void {
  stream.write(line + '\n');
}

/** The table and progress-bar libraries load when first drawn: a push must not wait for them before it sends. */
const require = createRequire(import.meta.url);

/** Width of a wrapped last column (reasons can hold a whole propagation chain). */
const WRAP_WIDTH = 64;

/**
 * Loads the table library and draws one throwaway table, for a command waiting on the server
 * meanwhile: loading takes ~6 ms, and a first table ~5 ms (what it compiles on first use) where
 * the next takes half that.
 */
export function warmTables(): void {
  renderTable(['warm'], [['up']], true);
}

/** A plain table: no colours, so piped output and logs stay clean. `wrapLast` word-wraps the last column. */
export function renderTable(head: string[], rows: Array<Array<string | number>>, wrapLast = false): string {
  const width = Math.min(WRAP_WIDTH, Math.max(head.at(-1)?.length ?? 0, ...rows.map((r) => String(r.at(-1) ?? '').length)) + 2);
  const Table = require('cli-table3') as typeof TableClass;
  const table = new Table({
    head,
    style: { head: [], border: [], compact: true },
    ...(wrapLast ? { wordWrap: true, colWidths: [...head.slice(0, -1).map(() => null), width] } : {}),
  });
  for (const row of rows) table.push(row.map(String));
  return table.toString();
}

/**
 * The per-worker outcome of a deployment (worker, pid, outcome, ms, reason). A reason that is its
 * host's own (`hostReasons`: printed once above the table) is left out of the rows, so a host's
 * failure is not repeated for every worker.
 */
export function renderWorkers(workers: WorkerReport[], hostReasons: ReadonlyMap<string, ReadonlySet<string>> = new Map()): string {
  if (workers.length === 0) return 'no workers run this app on any attached host';
  return renderTable(['worker', 'pid', 'outcome', 'ms', 'reason'], workers.map((w) => {
    const reason = oneLine(w.reason ?? '');
    const said = hostReasons.get(w.host)?.has(reason) ?? false;
    return [`${w.host}#${w.pmId}`, w.pid ?? '-', w.outcome, Math.round(w.durationMs), said ? '' : reason];
  }), true);
}

/** Runtime reasons carry webpack-style multi-line messages; a table cell wants one line to wrap. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The first line of a reason, cut to `max` characters: for cells that must stay one line. */
export function firstLine(text: string, max = 100): string {
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export interface Progress {
  update(sent: number, total: number): void;
  stop(): void;
}

/** An upload bar on a terminal only: nothing when `err` is not a TTY or the output is `--json`. */
export function uploadProgress(io: Io, json: boolean): Progress | undefined {
  if (json || !io.err.isTTY) return undefined;
  const cliProgress = require('cli-progress') as typeof cliProgressModule;
  const bar = new cliProgress.SingleBar({
    stream: io.err,
    format: 'upload [{bar}] {percentage}% {sent}/{size}',
    hideCursor: true,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(sent, total) {
      if (!started) {
        bar.start(total, 0, { sent: formatBytes(0), size: formatBytes(total) });
        started = true;
      }
      bar.update(sent, { sent: formatBytes(sent) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
