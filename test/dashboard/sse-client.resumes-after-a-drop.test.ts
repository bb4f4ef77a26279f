import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { deployVersion, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// The dashboard's own stream reader (a browser ES module that Node runs as it is: fetch and web
// streams are the same API) against the real service: parsing per the HTML standard, and a dropped
// stream resumed with Last-Event-ID, nothing missed and nothing twice.

interface SseEvent { type: string; data: string; id: string }
interface SseModule {
  SseParser: new (onEvent: (event: SseEvent) => void) => { push(text: string): void; lastEventId: string; retry?: number };
  followEvents(options: {
    url: string; headers: () => Record<string, string>; onEvent: (event: SseEvent) => void;
    onState: (state: string) => void; onRefused: (status: number) => void;
  }): { stop(): void };
}

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../services/server/dashboard/public/sse.js');
const sse = await import(MODULE) as SseModule;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

it('parses fields, comments, multi-line data, ids and any line ending, in any chunking', () => {
  const text = ': comment\r\nevent: deployment\r\nid: 7\r\ndata: {"a":\ndata: 1}\r\n\r\nretry: 3000\nevent: other\rdata:x\r\rdata: no id change\n\n';
  for (const size of [1, 2, 5, text.length]) {
    const events: SseEvent[] = [];
    const parser = new sse.SseParser((e) => events.push(e));
    for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
    expect(events).toEqual([
      { type: 'deployment', data: '{"a":\n1}', id: '7' },
      { type: 'other', data: 'x', id: '7' },
      { type: 'message', data: 'no id change', id: '7' },
    ]);
    expect(parser.retry).toBe(3000);
  }
});

it('resumes a dropped stream with Last-Event-ID: every event once, in order', async () => {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  const events: SseEvent[] = [];
  const states: string[] = [];
  const follower = sse.followEvents({
    url: `http://127.0.0.1:${port}/v1/events`,
    headers: () => ({ authorization: `Bearer ${TOKENS.admin}` }),
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    onRefused: (status) => { throw new Error(`refused ${status}`); },
  });
  try {
    await waitFor('the stream', () => states.includes('live'), 5_000);
    await deployVersion(server.app, 'demo', '1.0.0');
    await waitFor('the first deployment\'s events', () => events.length === 5, 5_000);
    // The connection drops; the follower waits a second before it reconnects, and meanwhile a deployment runs.
    server.app.server.closeAllConnections();
    await waitFor('the drop to be seen', () => states.at(-1) === 'reconnecting', 5_000);
    await deployVersion(server.app, 'demo', '2.0.0');
    await waitFor('the missed events, replayed', () => events.length === 10, 10_000);
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual(ids.map((_, i) => (ids[0] as number) + i));
    expect(events.slice(5).map((e) => JSON.parse(e.data).version)).toEqual(Array(5).fill('2.0.0'));
    expect(states.filter((s) => s === 'live')).toHaveLength(2);
  } finally {
    follower.stop();
  }
});
