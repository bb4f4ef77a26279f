import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * How late this process's event loop runs, for the agent's `ping` (and from there the service's
 * metrics). Node's histogram samples with a timer every RESOLUTION_MS and records the whole
 * interval, so the resolution is taken off what it reports. At 100 ms an idle worker spends about
 * 0.5 ms of CPU a second on it (20 ms cost 2 ms), and a window still holds ~100 samples; a stall
 * longer than the resolution shows in full in `maxMs`. Figures cover a window of at least
 * WINDOW_MS that ends at a reading, so frequent readers (health gates, several scrapers) do not
 * shrink each other's view to a few samples.
 */
const RESOLUTION_MS = 100;
const WINDOW_MS = 10_000;

export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

let histogram: IntervalHistogram | undefined;
let windowStart = 0;
let last: LoopDelay | undefined;

/** Starts sampling (idempotent): one timer every RESOLUTION_MS, recording into a histogram. */
export function startLoopDelay(): void {
  if (histogram) return;
  histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  windowStart = Date.now();
}

/** The last complete window's figures (the current one's until one completes); none before `startLoopDelay`. */
export function loopDelay(): LoopDelay | undefined {
  if (!histogram || histogram.count === 0) return last;
  const current = { p99Ms: beyond(histogram.percentile(99)), maxMs: beyond(histogram.max) };
  if (Date.now() - windowStart < WINDOW_MS) return last ?? current;
  last = current;
  histogram.reset();
  windowStart = Date.now();
  return last;
}

function beyond(ns: number): number {
  return Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
}
