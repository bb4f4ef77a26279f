import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedLoop } from '../../bench/closed-loop.js';
import { parseCpuList } from '../../bench/pin.js';

// Figure 4's load generator against real servers on loopback: it counts whole answers only, keeps
// one request per connection in flight, and fails loudly on anything it cannot frame.

const servers: http.Server[] = [];
const loops: ClosedLoop[] = [];

async function serve(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function open(port: number, connections: number): Promise<ClosedLoop> {
  const loop = await ClosedLoop.open(port, connections);
  loops.push(loop);
  return loop;
}

afterEach(async () => {
  for (const l of loops.splice(0)) l.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));
});

describe('ClosedLoop', () => {
  it('counts the answers of a slice, one request per connection at a time, over kept-alive connections', async () => {
    let inFlight = 0;
    let most = 0;
    let requests = 0;
    const sockets = new Set<unknown>();
    const port = await serve((req, res) => {
      requests++;
      sockets.add(req.socket);
      most = Math.max(most, ++inFlight);
      // Answers split over several writes, some after a turn of the event loop: framing must hold.
      const body = JSON.stringify({ n: requests, pad: 'x'.repeat(requests % 50) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.write(body.slice(0, 3));
      setImmediate(() => {
        inFlight--;
        res.end(body.slice(3));
      });
    });
    const loop = await open(port, 4);
    const before = requests;
    const rate = await loop.slice(300);
    const counted = requests - before;
    expect(rate).toBeGreaterThan(0);
    // Counted answers are answered requests (the slice lasted at least 300 ms), and no more than one per connection ran at once.
    expect(rate * 0.3).toBeLessThanOrEqual(counted + 0.5);
    expect(most).toBeLessThanOrEqual(4);
    expect(sockets.size).toBe(4);
    // Between slices nothing is sent.
    const idle = requests;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(requests).toBe(idle);
    expect(await loop.slice(100)).toBeGreaterThan(0);
  });

  it('fails on an answer other than 200, naming it', async () => {
    const port = await serve((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    const loop = await open(port, 2);
    await expect(loop.slice(100)).rejects.toThrow(/"HTTP\/1.1 503 Service Unavailable", not 200/);
  });

  it('fails on an answer it cannot frame (chunked, no Content-Length)', async () => {
    const port = await serve((_req, res) => {
      res.write('a');
      res.end('b');
    });
    const loop = await open(port, 1);
    await expect(loop.slice(100)).rejects.toThrow(/without Content-Length/);
  });

  it('fails when the server closes a connection, instead of waiting for its answer', async () => {
    const port = await serve((req) => req.socket.destroy());
    const loop = await open(port, 2);
    await expect(loop.slice(100)).rejects.toThrow(/closed a keep-alive connection|ECONNRESET/);
  });

  it('refuses to open against a port nobody listens on', async () => {
    const port = await serve(() => undefined);
    const server = servers.pop() as http.Server;
    await new Promise((resolve) => server.close(resolve));
    await expect(ClosedLoop.open(port, 2)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('parseCpuList', () => {
  it('reads taskset lists with ranges', () => {
    expect(parseCpuList(' 0,1\n')).toEqual([0, 1]);
    expect(parseCpuList('0,2-4,7')).toEqual([0, 2, 3, 4, 7]);
    expect(parseCpuList('')).toEqual([]);
  });
});
