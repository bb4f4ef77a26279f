import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.js';
import { DeployError } from '../errors.js';

/**
 * `GET /metrics`: the Prometheus text format. A token with `read` on every app: the series name
 * every app, and a token scoped to some apps must not learn the others' names.
 */
export function metricsRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get('/metrics', { config: { action: 'read' } }, async (request, reply) => {
    const principal = request.principal;
    if (principal === null || principal.apps !== '*') {
      throw new DeployError('DEPLOY_ERR_FORBIDDEN', `token "${principal?.name ?? '?'}" does not cover every app, which /metrics needs`);
    }
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
