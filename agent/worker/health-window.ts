import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { WindowReport, WindowSpec } from '../messages.js';
import { describeError } from '../runtime/error-location.js';

/** Calls `onAnswer` for every response the worker's server finishes, until the returned undo runs. */
export type WatchAnswers = (onAnswer: (req: IncomingMessage, res: ServerResponse) => void) => () => void;

/**
 * The health window after a hot swap: for `windowMs`, counts the answers the worker's server sends,
 * the 5xx among them, and uncaught exceptions (through `uncaughtExceptionMonitor`, which leaves
 * Node's own handling as it is). It ends once: tripped as soon as the errors (5xx + exceptions)
 * reach `threshold` and are at least `errorRate` of the answers, or passed when the time is up.
 * Nothing is counted outside a window. Without a server of its own (process mode) only exceptions count.
 */
export class HealthWindow {
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly unwatch: () => void;
  private requests = 0;
  private errors5xx = 0;
  private exceptions = 0;
  private sample: string | undefined;
  private ended = false;

  constructor(
    private readonly spec: WindowSpec,
    watch: WatchAnswers | undefined,
    private readonly roots: () => string[],
    private readonly onEnd: (report: WindowReport) => void,
  ) {
    const unwatchAnswers = watch?.((req, res) => this.answered(req, res)) ?? (() => undefined);
    const onException = (err: unknown): void => this.exception(err);
    process.on('uncaughtExceptionMonitor', onException);
    this.unwatch = () => {
      unwatchAnswers();
      process.off('uncaughtExceptionMonitor', onException);
    };
    this.timer = setTimeout(() => this.end(false), spec.windowMs);
    this.timer.unref();
  }

  /** Ends the window without a report (a newer swap starts its own). */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.unwatch();
  }

  private answered(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    if (res.statusCode < 500) return;
    this.errors5xx++;
    this.sample ??= `${req.method ?? 'GET'} ${req.url ?? '/'} answered ${res.statusCode}`;
    this.check();
  }

  private exception(err: unknown): void {
    this.exceptions++;
    this.sample ??= `uncaught ${describeError(err, this.roots()).message}`;
    this.check();
  }

  private check(): void {
    const errors = this.errors5xx + this.exceptions;
    if (errors >= this.spec.threshold && errors >= this.spec.errorRate * Math.max(this.requests, 1)) this.end(true);
  }

  private end(tripped: boolean): void {
    if (this.ended) return;
    this.cancel();
    this.onEnd({
      tripped, windowMs: this.spec.windowMs, elapsedMs: Math.round(performance.now() - this.started),
      requests: this.requests, errors5xx: this.errors5xx, exceptions: this.exceptions,
      ...(this.sample === undefined ? {} : { sample: this.sample }),
    });
  }
}
