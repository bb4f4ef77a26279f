import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
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
    const unsubscribe = ctx.bus.subscribe((event) => {
      if (only !== undefined && event.app !== only) return;
      if (principal === null || !coversApp(principal, event.app)) return;
      res.write(`id: ${event.seq}\nevent: deployment\ndata: ${JSON.stringify(event)}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
    });
  });
}
