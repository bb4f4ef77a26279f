import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
import type { DeploymentEvent, EventBus } from '../events.js';
import { APP_PATTERN } from '../schemas.js';

/** Comment lines keep proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/**
 * Event bytes a stream may owe its client before the client is dropped. A client that stopped
 * reading would otherwise keep every later event in the service's memory; dropped, it reconnects
 * with `Last-Event-ID` and gets what it missed (or a `resync`).
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;

/** `GET /v1/events`: deployment events as server-sent events (`event: deployment`, JSON `data:`). */
export function eventRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const open = new Set<ServerResponse>();
  const frames = new FrameCache();
  // Open streams would hold fastify.close() forever: end them first.
  app.addHook('preClose', (done) => {
    for (const res of open) res.end();
    done();
  });

  app.get<{ Querystring: { app?: string } }>('/v1/events', {
    config: { action: 'read' },
    schema: { querystring: { type: 'object', properties: { app: { type: 'string', pattern: APP_PATTERN } } } },
  }, (request, reply) => {
    const principal = request.principal;
    const only = request.query.app;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': hotdeploy events\n\n');
    open.add(res);
    const stream = new EventStream(res, frames, () => request.log.warn({ unsent: stream.unsent }, 'event stream dropped: the client does not read'));
    const send = (event: DeploymentEvent, json: string): void => {
      if (only !== undefined && event.app !== only) return;
      if (principal === null || !coversApp(principal, event.app)) return;
      stream.send(event.seq, json);
    };
    replay(ctx.bus, request.headers['last-event-id'], res, send);
    const unsubscribe = ctx.bus.subscribe(send);
    const heartbeat = setInterval(() => stream.heartbeat(), HEARTBEAT_MS);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
    });
  });
}

/**
 * One client's stream with back-pressure. While the socket takes data, events are written as they
 * come; once it does not (`write` returned false), events wait as references to their frames,
 * shared by every stream (FrameCache), and are written as the socket drains. So a
 * stalled client costs the service what one write holds plus a list of references, and past
 * `MAX_UNSENT_BYTES` owed it is dropped. A burst (a host's reports of one deployment, all at once)
 * to a client that reads is only queued.
 */
class EventStream {
  private readonly queue: Buffer[] = [];
  private queued = 0;

  constructor(private readonly res: ServerResponse, private readonly frames: FrameCache, private readonly onDrop: () => void) {
    res.on('drain', () => this.flush());
  }

  /** Event bytes owed: queued, plus what the socket has not sent. */
  get unsent(): number {
    return this.queued + this.res.writableLength;
  }

  send(seq: number, json: string): void {
    if (this.res.destroyed) return;
    const frame = this.frames.frame(seq, json);
    this.queue.push(frame);
    this.queued += frame.length;
    if (this.unsent > MAX_UNSENT_BYTES) return this.drop();
    if (!this.res.writableNeedDrain) this.flush();
  }

  /** Only to an idle stream: one that owes events is not idle. */
  heartbeat(): void {
    if (!this.res.destroyed && this.queue.length === 0 && !this.res.writableNeedDrain) this.res.write(': heartbeat\n\n');
  }

  private flush(): void {
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      this.queued -= next.length;
      if (!this.res.write(next)) return;
    }
  }

  private drop(): void {
    this.onDrop();
    this.queue.length = 0;
    this.queued = 0;
    this.res.destroy();
  }
}

/**
 * An event's frame, encoded once for every stream: a socket writes a Buffer without copying it, so
 * the streams that owe a client an event share its bytes. Every stream gets a new event in turn
 * (one emit), so the newest frame is all that is kept.
 */
class FrameCache {
  private last: { seq: number; frame: Buffer } | undefined;

  frame(seq: number, json: string): Buffer {
    if (this.last?.seq !== seq) this.last = { seq, frame: Buffer.from(`id: ${seq}\nevent: deployment\ndata: ${json}\n\n`) };
    return this.last.frame;
  }
}

/**
 * A client resuming with `Last-Event-ID` first gets the events it missed, from the bus's bounded
 * buffer. When they are not all there (evicted, or the id is another run's), it gets one `resync`
 * event instead, carrying the newest id: it must read the current state again.
 */
function replay(bus: EventBus, header: string | string[] | undefined, res: ServerResponse, send: (event: DeploymentEvent, json: string) => void): void {
  if (typeof header !== 'string' || !/^\d{1,16}$/.test(header)) return;
  const missed = bus.since(Number(header));
  if (missed === undefined) {
    res.write(`id: ${bus.lastSeq}\nevent: resync\ndata: ${JSON.stringify({ seq: bus.lastSeq, reason: 'the events after this id are no longer kept' })}\n\n`);
    return;
  }
  for (const { event, json } of missed) send(event, json);
}
