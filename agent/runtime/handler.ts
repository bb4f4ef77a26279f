import type { IncomingMessage, ServerResponse } from 'node:http';
import { HotError } from '../errors.js';
import { TrackedResponse, type InFlightCounter } from './tracked-response.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
type AnyHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface AppHandler {
  handle: AnyHandler;
  /** Closes what this version of the app owns (a fastify instance), once its requests drained. */
  close?: () => Promise<void>;
}

/** A fastify instance, by shape: agent/ never imports fastify (DESIGN.md). */
interface FastifyLike {
  ready(): PromiseLike<unknown>;
  routing(req: IncomingMessage, res: ServerResponse): void;
  close(): PromiseLike<unknown>;
  server: unknown;
}

function isFastify(value: unknown): value is FastifyLike {
  const v = value as Partial<FastifyLike> | null;
  return typeof v === 'object' && v !== null && typeof v.ready === 'function' &&
    typeof v.routing === 'function' && typeof v.close === 'function' && 'server' in v;
}

/**
 * What the entry exports, as a request handler (issue 2): a function of two or more parameters
 * (plain Node, Express's `app(req, res, next)`, `koa.callback()`), a fastify instance (made ready,
 * requests routed into it), or a factory of no parameters, possibly async, returning either.
 * `default` and `handler` exports are looked through (TypeScript-compiled apps).
 */
export async function resolveHandler(exported: unknown, factoryAllowed = true): Promise<AppHandler> {
  if (typeof exported === 'function' && exported.length >= 2) return { handle: exported as AnyHandler };
  if (isFastify(exported)) {
    await exported.ready();
    return { handle: (req, res) => exported.routing(req, res), close: async () => { await exported.close(); } };
  }
  if (typeof exported === 'function' && exported.length === 0 && factoryAllowed) {
    return resolveHandler(await (exported as () => unknown)(), false);
  }
  if ((typeof exported === 'object' || typeof exported === 'function') && exported !== null) {
    for (const key of ['default', 'handler'] as const) {
      const inner: unknown = (exported as Record<string, unknown>)[key];
      if (inner !== undefined && inner !== exported) return resolveHandler(inner, factoryAllowed);
    }
  }
  throw new HotError('HOT_ERR_HANDLER', describe(exported));
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `a function of ${value.length} parameter(s)`;
  if (value === null) return 'null';
  return typeof value === 'object' ? `an object with keys ${Object.keys(value).slice(0, 5).join(', ') || '(none)'}` : typeof value;
}

/** Requests that started on one version of the app (Erlang's old/current code, issue 2 item 4). */
class Generation implements InFlightCounter {
  inFlight = 0;
  /** Released when this generation is replaced: what failed updates could not retire yet. */
  deferred: (() => Promise<void>)[] = [];
  private readonly waiters: (() => void)[] = [];

  constructor(readonly app: AppHandler | undefined) {}

  enter(): void {
    this.inFlight++;
  }

  leave(): void {
    // Checked before splice: a generation comes back to 0 requests whenever the worker has caught up,
    // often many times a second under load, and splice(0) allocates an array each time.
    if (--this.inFlight === 0 && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w();
  }

  drained(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * The handler indirection: the worker's server calls `handler`, which calls the current version's
 * handler. Every applied update starts a new generation; what the update replaced (retire
 * callbacks, the old fastify instance) is released once every older generation drained or
 * `drainTimeoutMs` passed.
 */
export class HandlerHost {
  private current = new Generation(undefined);
  private older = new Set<Generation>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly drainTimeoutMs: number,
    private readonly onError: (err: unknown, where: string) => void,
  ) {}

  readonly handler: RequestHandler = (req, res) => {
    const gen = this.current;
    const app = gen.app;
    if (!app) {
      res.statusCode = 503;
      res.end();
      return;
    }
    gen.enter();
    // The worker's own server makes TrackedResponses (no listener per request); any other server's
    // responses (an app hosting itself, tests) are counted out by a 'close' listener.
    if (res instanceof TrackedResponse) res.countIn(gen);
    else res.once('close', () => gen.leave());
    try {
      const r = app.handle(req, res) as PromiseLike<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => this.failRequest(res, err));
    } catch (err) {
      this.failRequest(res, err);
    }
  };

  get app(): AppHandler | undefined {
    return this.current.app;
  }

  /** New requests go to `app` from now on; `release` runs once the requests before it finished. */
  swap(app: AppHandler | undefined, release: (() => Promise<void>)[]): void {
    const previous = this.current;
    this.current = new Generation(app);
    this.keepUntilDrained(previous);
    const toClose = previous.app && previous.app !== app && previous.app.close ? [previous.app.close] : [];
    this.later([...previous.deferred, ...release, ...toClose]);
  }

  /** A failed update: the current version keeps serving, so what it replaced waits for the next swap. */
  defer(release: (() => Promise<void>)[]): void {
    this.current.deferred.push(...release);
  }

  /** Releases everything now, after the in-flight requests (or the drain timeout). */
  async close(release: (() => Promise<void>)[]): Promise<void> {
    const last = this.current;
    this.current = new Generation(undefined);
    this.keepUntilDrained(last);
    this.later([...last.deferred, ...release, ...(last.app?.close ? [last.app.close] : [])]);
    await Promise.all(this.pending);
  }

  /** A replaced generation stays known (for later retirements to wait on) only while it has requests. */
  private keepUntilDrained(gen: Generation): void {
    if (gen.inFlight === 0) return;
    this.older.add(gen);
    void gen.drained().then(() => this.older.delete(gen));
  }

  private later(tasks: (() => Promise<void> | Promise<unknown>)[]): void {
    if (tasks.length === 0) return;
    const waitFor = [...this.older].map((g) => g.drained());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.drainTimeoutMs);
      timer.unref();
    });
    const done = Promise.race([Promise.all(waitFor), timeout]).then(async () => {
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
