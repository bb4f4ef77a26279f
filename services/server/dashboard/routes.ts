import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DeployError } from '../errors.js';
import { dashboardAssets } from './assets.js';

/**
 * The page may load only its own files and talk only to this service: no inline script or style,
 * no framing, no forms submitted anywhere (the token is read by script, never sent in a URL), no
 * plugins, and DOM sinks that parse HTML refuse plain strings (Trusted Types, where the browser has
 * them): data reaches the page as text only.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  "require-trusted-types-for 'script'", "trusted-types 'none'",
].join('; ');

/** On every response, the API's included: a JSON answer must never be read as a page or framed. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * `GET /` and `GET /dashboard/<file>`: the dashboard, served by the service itself. The files are
 * public (they hold no data); everything the page shows comes from the token-checked API.
 * No CORS headers are sent anywhere, so only pages of this origin can read the API's answers.
 */
export function dashboardRoutes(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.get('/', (request, reply) => sendAsset(request, reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/dashboard/:file', {
    schema: { params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[a-z0-9-]{1,64}\\.[a-z]{2,4}$' } } } },
  }, (request, reply) => sendAsset(request, reply, request.params.file));
}

async function sendAsset(request: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> {
  const asset = (await dashboardAssets()).get(name);
  if (!asset) throw new DeployError('DEPLOY_ERR_ROUTE_NOT_FOUND', `${request.method} ${request.url}`);
  void reply.header('content-type', asset.type).header('etag', asset.etag).header('cache-control', 'no-cache');
  if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
  return reply.send(asset.body);
}
