import type { FastifyInstance } from 'fastify';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
import { DeployError } from '../errors.js';
import { APP_PATTERN } from '../schemas.js';

export function deploymentRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get<{ Params: { id: string } }>('/v1/deployments/:id', {
    config: { action: 'read' },
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' } } } },
  }, async (request) => {
    const deployment = await ctx.deployments.get(request.params.id);
    // Another app's deployment is reported as missing rather than forbidden: ids are not secrets, apps may be.
    if (request.principal === null || !coversApp(request.principal, deployment.app)) {
      throw new DeployError('DEPLOY_ERR_DEPLOYMENT_NOT_FOUND', request.params.id);
    }
    return deployment;
  });

  app.get<{ Querystring: { app?: string; limit: number } }>('/v1/deployments', {
    config: { action: 'read' },
    schema: {
      querystring: {
        type: 'object',
        properties: { app: { type: 'string', pattern: APP_PATTERN }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
      },
    },
  }, async (request) => {
    const { app: name, limit } = request.query;
    const all = await ctx.deployments.list(name, limit);
    return { deployments: all.filter((d) => request.principal !== null && coversApp(request.principal, d.app)) };
  });
}
