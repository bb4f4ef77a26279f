import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
import type { DeploymentEvent, EventBus } from '../events.js';
import { APP_PATTERN } from '../schemas.js';

/** Comment lines keep proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/** `GET /v1/events`: deployment events as server-sent events (`event: deployment`, JSON `data:`). */
export function eventRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const open = new Set<ServerResponse>();
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
    const send = (event: DeploymentEvent, json: string): void => {
      if (only !== undefined && event.app !== only) return;
      if (principal === null || !coversApp(principal, event.app)) return;
      res.write(`id: ${event.seq}\nevent: deployment\ndata: ${json}\n\n`);
    };
    replay(ctx.bus, request.headers['last-event-id'], res, send);
    const unsubscribe = ctx.bus.subscribe(send);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
    });
  });
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
