import { once } from 'node:events';
import http from 'node:http';
import { beforeEach, expect, it } from 'vitest';
import { useChildServers, type ChildServer } from '../helpers/child-server.js';
import { TOKENS } from '../helpers/server.js';

const children = useChildServers('hotdeploy-sigterm-');
let server: ChildServer;
let dir: string;
beforeEach(() => { dir = children.dir(); });

it('closes and exits 0 on SIGTERM, even with an event stream open', async () => {
  server = await children.start(dir);
  const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${server.url}/v1/events`, { headers: { authorization: `Bearer ${TOKENS.admin}` } }, resolve).on('error', reject);
  });
  expect(stream.statusCode).toBe(200);
  stream.resume();
  const ended = once(stream, 'end');
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const [code] = await Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit within 15 s')), 15_000))]);
  expect(code).toBe(0);
  await ended;
});
