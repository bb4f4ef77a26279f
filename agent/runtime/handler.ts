import type { IncomingMessage, ServerResponse } from 'node:http';
import { inFlightNow, isTracked } from './in-flight.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type AnyHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface AppHandler {
  handle: AnyHandler;
  /** Closes what this version of the app owns (a fastify instance), once its requests drained. */
  close?: () => Promise<void>;
}

/**
 * The handler indirection: the worker's server calls `handler`, which calls the current version's
 * handler. What an update replaced (retire callbacks, the old fastify instance) is released once
 * every request in flight at the swap has ended (`inFlightNow`: Erlang's old and current code), or
 * `drainTimeoutMs` passed.
 */
export class HandlerHost {
  private current: AppHandler | undefined = undefined;
  /** What failed updates could not retire yet: released at the next swap. */
  private deferred: (() => Promise<void>)[] = [];
  /** Responses of servers that do not track their connections (an app hosting itself, tests), until they close. */
  private readonly untracked = new Set<ServerResponse>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly drainTimeoutMs: number,
    private readonly onError: (err: unknown, where: string) => void,
  ) {}

  readonly handler: RequestHandler = (req, res) => {
    const app = this.current;
    if (!app) {
      res.statusCode = 503;
      res.end();
      return;
    }
    // The worker's own server recorded this response on its connection; any other server's
    // responses are kept here until their 'close'.
    if (!isTracked(req, res)) this.keepUntilClosed(res);
    try {
      const r = app.handle(req, res) as PromiseLike<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => this.failRequest(res, err));
    } catch (err) {
      this.failRequest(res, err);
    }
  };

  get app(): AppHandler | undefined {
    return this.current;
  }

  /** New requests go to `app` from now on; `release` runs once the requests before it finished. */
  swap(app: AppHandler | undefined, release: (() => Promise<void>)[]): void {
    const previous = this.current;
    const deferred = this.deferred;
    this.current = app;
    this.deferred = [];
    const toClose = previous && previous !== app && previous.close ? [previous.close] : [];
    this.later([...deferred, ...release, ...toClose]);
  }

  /** A failed update: the current version keeps serving, so what it replaced waits for the next swap. */
  defer(release: (() => Promise<void>)[]): void {
    this.deferred.push(...release);
  }

  /** Releases everything now, after the in-flight requests (or the drain timeout). */
  async close(release: (() => Promise<void>)[]): Promise<void> {
    this.swap(undefined, release);
    await Promise.all(this.pending);
  }

  private keepUntilClosed(res: ServerResponse): void {
    this.untracked.add(res);
    res.once('close', () => this.untracked.delete(res));
  }

  private later(tasks: (() => Promise<void> | Promise<unknown>)[]): void {
    if (tasks.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.drainTimeoutMs);
      timer.unref();
    });
    const done = Promise.race([inFlightNow(this.untracked), timeout]).then(async () => {
      clearTimeout(timer);
      for (const task of tasks) {
        try {
          await task();
        } catch (err) {
          this.onError(err, 'retire');
        }
      }
    });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private failRequest(res: ServerResponse, err: unknown): void {
    this.onError(err, 'request');
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end();
    } else {
      res.destroy();
    }
  }
}
