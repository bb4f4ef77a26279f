import type { FastifyError, FastifyInstance } from 'fastify';
import { DeployError, isDeployError, type DeployErrorCode, type ErrorBody } from './errors.js';

const FASTIFY_CODES: Record<string, DeployErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'DEPLOY_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'DEPLOY_ERR_INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'DEPLOY_ERR_INVALID_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'DEPLOY_ERR_VALIDATION',
};

/** Every error response, fastify's own included, is `{ statusCode, code, message }` with a DEPLOY_ERR_* code. */
export function toErrorBody(err: unknown): ErrorBody {
  if (isDeployError(err)) return { statusCode: err.statusCode, code: err.code, message: err.message };
  const e = err as FastifyError;
  if (e?.validation) {
    const d = new DeployError(validationCode(e), e.message);
    return { statusCode: d.statusCode, code: d.code, message: d.message };
  }
  const mapped = FASTIFY_CODES[e?.code ?? ''];
  if (mapped) {
    const d = new DeployError(mapped, e.message);
    return { statusCode: d.statusCode, code: d.code, message: d.message };
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { statusCode: e.statusCode, code: 'DEPLOY_ERR_VALIDATION', message: e.message };
  }
  return { statusCode: 500, code: 'DEPLOY_ERR_INTERNAL', message: 'internal error' };
}

/** App and version names get codes of their own; any other schema failure is DEPLOY_ERR_VALIDATION. */
function validationCode(e: FastifyError): DeployErrorCode {
  const first = e.validation?.[0];
  const field = `${first?.instancePath ?? ''}/${(first?.params as { missingProperty?: string } | undefined)?.missingProperty ?? ''}`;
  if (e.validationContext === 'params' && field.startsWith('/app')) return 'DEPLOY_ERR_INVALID_APP';
  if (/^\/(version|to)\b/.test(field)) return 'DEPLOY_ERR_INVALID_VERSION';
  return 'DEPLOY_ERR_VALIDATION';
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const body = toErrorBody(err);
    // 4xx are logged once, by the request line (build-server.ts), which carries this code.
    request.errorCode = body.code;
    if (body.statusCode >= 500) request.log.error({ err, code: body.code }, body.message);
    // The body of a refused upload may still be on its way: do not read (and discard) the rest of it.
    if (!request.raw.complete) void reply.header('connection', 'close');
    return reply.status(body.statusCode).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const d = new DeployError('DEPLOY_ERR_ROUTE_NOT_FOUND', `${request.method} ${request.url}`);
    return reply.status(404).send({ statusCode: 404, code: d.code, message: d.message } satisfies ErrorBody);
  });
}
