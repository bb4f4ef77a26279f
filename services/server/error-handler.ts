import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BUSY_RETRY_AFTER_SECONDS } from './unpack/admission.js';
import { DeployError, isDeployError, type DeployErrorCode, type ErrorBody } from './errors.js';

const FASTIFY_CODES: Record<string, DeployErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'DEPLOY_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'DEPLOY_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'DEPLOY_ERR_INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'DEPLOY_ERR_INVALID_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'DEPLOY_ERR_VALIDATION',
  FST_ERR_BAD_URL: 'DEPLOY_ERR_BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'DEPLOY_ERR_URI_TOO_LONG',
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
    if (body.code === 'DEPLOY_ERR_BUSY') void reply.header('retry-after', String(BUSY_RETRY_AFTER_SECONDS));
    // A stalled upload sends no rest to wait for: its connection closes with the answer.
    if (!request.raw.complete && body.code === 'DEPLOY_ERR_UPLOAD_TIMEOUT') void reply.header('connection', 'close');
    else if (!request.raw.complete) discardRestOfBody(request.raw, reply.raw);
    return reply.status(body.statusCode).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const d = new DeployError('DEPLOY_ERR_ROUTE_NOT_FOUND', `${request.method} ${request.url}`);
    return reply.status(404).send({ statusCode: 404, code: d.code, message: d.message } satisfies ErrorBody);
  });
}

/**
 * fastify's `frameworkErrors`: what its router refuses before any route or hook runs (a malformed
 * URL, a path parameter over its length) is answered like every other error.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const body = toErrorBody(err);
  request.errorCode = body.code;
  void reply.status(body.statusCode).send(body);
}

/**
 * fastify's `clientErrorHandler`: Node's HTTP parser refuses a request before fastify sees it
 * (headers too large, not HTTP, headers too slow); the answer is written to the socket as Node
 * and fastify do, with a DEPLOY_ERR_* body, and the connection closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: DeployErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'DEPLOY_ERR_HEADERS_TOO_LARGE'
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'DEPLOY_ERR_REQUEST_TIMEOUT' : 'DEPLOY_ERR_BAD_REQUEST';
  const d = new DeployError(code);
  const body = JSON.stringify({ statusCode: d.statusCode, code: d.code, message: d.message } satisfies ErrorBody);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${d.statusCode} ${STATUS_CODES[d.statusCode] ?? ''}\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/** How much of a refused request's body is still read, and for how long, before the connection is cut. */
export const DISCARD_BYTES = 64 * 1024 * 1024;
export const DISCARD_MS = 10_000;

/**
 * The body of a request refused before its end (401, 413, 408, ...) is read and thrown away, up to
 * DISCARD_BYTES for up to DISCARD_MS, while the answer goes out. Closing at once would reset the
 * connection under a client that writes its whole body before it reads (Python's urllib does): the
 * reset drops the answer it was sent. Past either bound the connection is cut. Node closes a
 * connection as soon as an answer saying `Connection: close` is sent (or one to a request that
 * said so), so this answer keeps the connection open; once the body has ended it is closed if the
 * client asked for that.
 */
function discardRestOfBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.destroyed) return;
  if (!res.headersSent) res.setHeader('connection', 'keep-alive');
  const clientCloses = /\bclose\b/i.test(req.headers.connection ?? '');
  let bytes = 0;
  const cut = () => {
    clearTimeout(timer);
    req.socket.destroy();
  };
  const timer = setTimeout(cut, DISCARD_MS).unref();
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > DISCARD_BYTES) cut();
  });
  req.once('end', () => {
    clearTimeout(timer);
    if (!clientCloses) return;
    if (res.writableFinished) req.socket.end();
    else res.once('finish', () => req.socket.end());
  });
  req.once('close', () => clearTimeout(timer));
  req.resume();
}
