import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.js';

/**
 * `GET /v1/whoami`: the token's name, apps and actions, for clients that show only what a token
 * may do (the dashboard hides the buttons of a read-only token). Any valid token may ask.
 */
export function whoamiRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get('/v1/whoami', async (request) => {
    const principal = ctx.tokens.authenticate(request.headers.authorization);
    request.principal = principal;
    return { name: principal.name, apps: principal.apps, actions: principal.actions };
  });
}
