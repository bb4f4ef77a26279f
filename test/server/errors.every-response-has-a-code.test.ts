import type { InjectOptions } from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { DeployErrorCodes } from '../../services/server/errors.js';
import { serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const auth = { authorization: `Bearer ${TOKENS.admin}` };

it.each<[string, InjectOptions, number, string]>([
  ['an unknown route', { method: 'GET', url: '/v2/nothing', headers: auth }, 404, 'DEPLOY_ERR_ROUTE_NOT_FOUND'],
  ['an unknown app', { method: 'GET', url: '/v1/apps/nope', headers: auth }, 404, 'DEPLOY_ERR_APP_NOT_FOUND'],
  ['an unknown release', { method: 'GET', url: '/v1/apps/demo/releases/9.9.9', headers: auth }, 404, 'DEPLOY_ERR_RELEASE_NOT_FOUND'],
  ['an unknown deployment', { method: 'GET', url: '/v1/deployments/zzz-123', headers: auth }, 404, 'DEPLOY_ERR_DEPLOYMENT_NOT_FOUND'],
  ['a body that is not JSON', { method: 'POST', url: '/v1/apps/demo/activate', headers: { ...auth, 'content-type': 'application/json' }, payload: '{nope' }, 400, 'DEPLOY_ERR_INVALID_JSON'],
  ['an upload of another media type', { method: 'PUT', url: '/v1/apps/demo/releases/2.0.0', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'hello' }, 415, 'DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE'],
  ['an upload without a body', { method: 'PUT', url: '/v1/apps/demo/releases/2.0.0', headers: auth }, 400, 'DEPLOY_ERR_EMPTY_BUNDLE'],
  ['an empty gzip upload', { method: 'PUT', url: '/v1/apps/demo/releases/2.0.0', headers: { ...auth, 'content-type': 'application/gzip' }, payload: '' }, 400, 'DEPLOY_ERR_EMPTY_BUNDLE'],
  ['a bad query value', { method: 'GET', url: '/v1/deployments?limit=0', headers: auth }, 400, 'DEPLOY_ERR_VALIDATION'],
])('answers %s with { statusCode, code, message }', async (_name, request, statusCode, code) => {
  ({ server } = await serverWithRelease());
  const res = await server.app.inject(request);
  expect(res.statusCode, res.body).toBe(statusCode);
  expect(res.json()).toEqual({ statusCode, code, message: expect.any(String) });
  expect(DeployErrorCodes[code as keyof typeof DeployErrorCodes][0]).toBe(statusCode);
});
