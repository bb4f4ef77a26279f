import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { expectUnchanged, serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

// Far more than the kernel buffers of a loopback connection hold: a server that stops reading makes
// the client's write of it fail, unless it reads (and discards) the rest.
const BODY_BYTES = 16 * 1024 * 1024;

interface Answer { status: number; body: { statusCode?: number; code?: string } }

/**
 * A client as Python's urllib is one: it writes the whole request (head and body) and only then
 * reads the answer, so a server that answers early and closes while the body is still arriving
 * resets the connection under its write and it never sees the answer.
 */
function writeAllThenRead(port: number, head: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.pause();
    socket.once('error', reject);
    socket.write(head);
    socket.write(body, (err) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        const text = Buffer.concat(chunks).toString('latin1');
        const split = text.indexOf('\r\n\r\n');
        const length = Number(/^content-length: (\d+)$/im.exec(text)?.[1] ?? NaN);
        if (split < 0 || !(text.length >= split + 4 + length)) return;
        socket.destroy();
        resolve({ status: Number(text.slice(9, 12)), body: JSON.parse(text.slice(split + 4, split + 4 + length)) as Answer['body'] });
      });
      socket.resume();
    });
  });
}

function putHead(port: number, headers: Record<string, string>): string {
  const lines = Object.entries({ host: `127.0.0.1:${port}`, 'content-type': 'application/gzip', connection: 'close', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `PUT /v1/apps/demo/releases/2.0.0 HTTP/1.1\r\n${lines}\r\n`;
}

async function listening(): Promise<{ port: number; before: Record<string, string> }> {
  let before;
  ({ server, before } = await serverWithRelease({ maxBundleBytes: 1024 * 1024 }));
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (server.app.server.address() as AddressInfo).port, before };
}

it.each([
  { refused: 'a 413 refused on Content-Length', token: TOKENS.admin, statusCode: 413, code: 'DEPLOY_ERR_BUNDLE_TOO_LARGE' },
  { refused: 'a 401 for a wrong token', token: 'wrong-token-0000000000', statusCode: 401, code: 'DEPLOY_ERR_UNAUTHORIZED' },
])('a client that writes the whole body first reads $refused', async ({ token, statusCode, code }) => {
  const { port, before } = await listening();
  const body = randomBytes(BODY_BYTES);
  const head = putHead(port, { authorization: `Bearer ${token}`, 'content-length': String(body.length) });
  const answer = await writeAllThenRead(port, head, body);
  expect(answer).toEqual({ status: statusCode, body: { statusCode, code, message: expect.any(String) } });
  await expectUnchanged(server, 'demo', before, '1.0.0');
});

it('a client that writes the whole chunked body first reads the 413 counted while it arrived', async () => {
  const { port, before } = await listening();
  const body = randomBytes(BODY_BYTES);
  const head = putHead(port, { authorization: `Bearer ${TOKENS.admin}`, 'transfer-encoding': 'chunked' });
  const chunked = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  const answer = await writeAllThenRead(port, head, chunked);
  expect(answer).toEqual({ status: 413, body: { statusCode: 413, code: 'DEPLOY_ERR_BUNDLE_TOO_LARGE', message: expect.any(String) } });
  await expectUnchanged(server, 'demo', before, '1.0.0');
});
