import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { listen, type OwnedServer } from '../../agent/worker/http-server.js';
import { waitFor } from '../helpers/wait.js';

const opened: { server?: OwnedServer; sockets: net.Socket[] } = { sockets: [] };
afterEach(async () => {
  for (const s of opened.sockets.splice(0)) s.destroy();
  await opened.server?.close(0);
  opened.server = undefined;
});

/** `/slow` answers when the test calls `answer[n]()` (n from 0, in arrival order); `/` at once. */
async function start(): Promise<{ port: number; server: OwnedServer; answers: (() => void)[] }> {
  const answers: (() => void)[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/slow') answers.push(() => res.end('slow'));
    else if (req.url === '/head') res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4 }).end('head');
    else res.end('fast');
  };
  const server = await listen(handler, 0);
  opened.server = server;
  return { port: server.port, server, answers };
}

/** A raw keep-alive client: `send` writes one request; `responses` are split as they arrive. */
async function client(port: number): Promise<{ send: (p: string) => void; next: () => Promise<string>; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  opened.sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = '';
  const waiters: (() => void)[] = [];
  socket.setEncoding('utf8').on('data', (c: string) => {
    buffer += c;
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    send: (p) => socket.write(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`),
    // Every answer here has a content-length and a body of a known word.
    next: async () => {
      for (;;) {
        const m = /^HTTP\/1\.1 [\s\S]*?\r\n\r\n(fast|slow|head)/.exec(buffer);
        if (m) {
          buffer = buffer.slice(m[0].length);
          return m[0];
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    closed,
  };
}

it('answers in-flight requests with Connection: close and resolves once they finished', async () => {
  const { port, server, answers } = await start();
  const c = await client(port);
  c.send('/slow');
  await waitFor('the slow request', () => answers.length === 1, 5000);
  let closed = false;
  const closing = server.close(30_000).then(() => (closed = true));
  // A fresh client is refused (the server stopped accepting) while the request is still running.
  await expect(client(port)).rejects.toThrow(/ECONNREFUSED/);
  expect(closed).toBe(false);
  answers[0]!();
  const answer = await c.next();
  expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  expect(answer.toLowerCase()).toContain('connection: close');
  await c.closed;
  await closing;
  expect(closed).toBe(true);
});

it('answers a request arriving on a keep-alive socket while closing with Connection: close, through writeHead too', async () => {
  const { port, server, answers } = await start();
  const c = await client(port);
  c.send('/');
  expect((await c.next()).toLowerCase()).toContain('connection: keep-alive');
  // Keep the server from finishing its close while the keep-alive socket sends one more request.
  const other = await client(port);
  other.send('/slow');
  await waitFor('the slow request', () => answers.length === 1, 5000);
  const closing = server.close(30_000);
  c.send('/head');
  const answer = (await c.next()).toLowerCase();
  expect(answer).toContain('content-type: text/plain');
  expect(answer).toContain('connection: close');
  await c.closed;
  answers[0]!();
  await other.next();
  await closing;
});

it('cuts what is still running at the deadline', async () => {
  const { port, server, answers } = await start();
  const c = await client(port);
  c.send('/slow');
  await waitFor('the slow request', () => answers.length === 1, 5000);
  await server.close(200);
  await c.closed;
});
