import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { DeployErrorCodes } from '../../services/server/errors.js';
import { expectUnchanged, serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

/** Sends `request` as raw bytes (what an HTTP client library would refuse to send) and reads the whole answer. */
function raw(port: number, request: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.once('error', reject);
    socket.once('close', () => {
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.slice(9, 12)), body: JSON.parse(text.slice(split + 4)) as unknown });
    });
  });
}

const auth = `Authorization: Bearer ${TOKENS.admin}\r\n`;

it.each<[string, string, number, string]>([
  ['an unknown route', `GET /v2/nothing HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`, 404, 'DEPLOY_ERR_ROUTE_NOT_FOUND'],
  ['a malformed percent-encoding in the path', `GET /v1/apps/%zz HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`, 400, 'DEPLOY_ERR_BAD_REQUEST'],
  ['a path parameter over fastify\'s length', `GET /v1/apps/${'a'.repeat(300)} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`, 414, 'DEPLOY_ERR_URI_TOO_LONG'],
  ['headers over Node\'s size limit', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`, 431, 'DEPLOY_ERR_HEADERS_TOO_LARGE'],
  ['a URL over Node\'s size limit', `GET /v1/apps?x=${'a'.repeat(32 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'DEPLOY_ERR_HEADERS_TOO_LARGE'],
  ['bytes that are not HTTP', 'NOT HTTP AT ALL\r\n\r\n', 400, 'DEPLOY_ERR_BAD_REQUEST'],
])('answers %s with { statusCode, code, message } and a DEPLOY_ERR_* code', async (_what, request, statusCode, code) => {
  let before;
  ({ server, before } = await serverWithRelease());
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  const answer = await raw(port, request);
  expect(answer).toEqual({ status: statusCode, body: { statusCode, code, message: expect.any(String) } });
  expect(DeployErrorCodes[code as keyof typeof DeployErrorCodes][0]).toBe(statusCode);
  // The service goes on serving, and nothing deployed changed.
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
