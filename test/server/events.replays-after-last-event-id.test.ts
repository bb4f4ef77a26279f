import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import type { Deployment } from '../../services/server/deployments.js';
import { EventBus, REPLAY_BYTES, REPLAY_EVENTS } from '../../services/server/events.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { openEvents, type SseStream } from '../helpers/sse.js';
import { deployVersion, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Data { seq: number; type?: string; app?: string }

function stream(port: number, token: string, lastEventId?: string): Promise<SseStream<Data>> {
  return openEvents<Data>(port, token, lastEventId === undefined ? {} : { lastEventId });
}

async function listening(): Promise<number> {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  return (server.app.server.address() as AddressInfo).port;
}

it('a client resuming with Last-Event-ID first gets the events it missed, then live ones', async () => {
  const port = await listening();
  const first = await stream(port, TOKENS.admin);
  await deployVersion(server!.app, 'demo', '1.0.0');
  await waitFor('the first deployment\'s five events', () => first.frames.length === 5, 10_000);
  first.close();
  const seen = first.frames[1]!;
  // The ids are the events' seq, one apart.
  expect(first.frames.map((f) => Number(f.id))).toEqual(first.frames.map((f) => f.data.seq));

  const resumed = await stream(port, TOKENS.admin, seen.id);
  await waitFor('the three missed events', () => resumed.frames.length === 3, 5_000);
  expect(resumed.frames.map((f) => f.id)).toEqual(first.frames.slice(2).map((f) => f.id));
  await deployVersion(server!.app, 'demo', '2.0.0');
  await waitFor('the live events after the replay', () => resumed.frames.length === 8, 10_000);
  expect(resumed.frames.slice(3).every((f) => f.event === 'deployment' && Number(f.id) > Number(first.frames[4]!.id))).toBe(true);
  resumed.close();

  // Resuming at the newest id replays nothing; another token's scope is kept on replay too.
  const current = await stream(port, TOKENS.admin, resumed.frames.at(-1)!.id);
  const other = await stream(port, TOKENS.other, seen.id);
  const probe = await stream(port, TOKENS.admin);
  await deployVersion(server!.app, 'other', '1.0.0');
  await waitFor('app other\'s events', () => current.frames.length === 5 && probe.frames.length === 5 && other.frames.length === 5, 10_000);
  expect(current.frames.every((f) => f.data.app === 'other')).toBe(true);
  expect(other.frames.every((f) => f.data.app === 'other')).toBe(true);
  for (const s of [current, other, probe]) s.close();
});

it('an id the server no longer keeps, or never gave, gets one resync event carrying the newest id', async () => {
  const port = await listening();
  const body = await deployVersion(server!.app, 'demo', '1.0.0');
  expect(body.deployment.status).toBe('succeeded');
  for (const id of ['5', String(Date.now() + 10_000_000)]) {
    const s = await stream(port, TOKENS.admin, id);
    await waitFor('the resync event', () => s.frames.length === 1, 5_000);
    expect(s.frames[0]!.event).toBe('resync');
    expect(s.frames[0]!.id).toBe(String(s.frames[0]!.data.seq));
    s.close();
  }
  // A malformed Last-Event-ID is ignored: a fresh stream.
  const fresh = await stream(port, TOKENS.admin, 'not-a-number');
  await deployVersion(server!.app, 'demo', '2.0.0');
  await waitFor('live events', () => fresh.frames.length === 5, 10_000);
  expect(fresh.frames.every((f) => f.event === 'deployment')).toBe(true);
  fresh.close();
});

it('the replay buffer is bounded by count and by bytes', () => {
  const bus = new EventBus();
  const start = bus.lastSeq;
  const record = (workers: number): Deployment => ({
    id: 'x', app: 'demo', version: '1', kind: 'push', status: 'running', by: 'admin', from: null, createdAt: '', startedAt: null,
    finishedAt: null, hosts: [], workers: Array.from({ length: workers }, (_, i) => ({ host: 'h', pmId: i, pid: i, version: '1', outcome: 'hot' as const, durationMs: 1 })),
  });
  for (let i = 0; i < REPLAY_EVENTS + 200; i += 1) bus.publish('started', record(0));
  expect(bus.since(start)).toBeUndefined();
  expect(bus.since(bus.lastSeq - REPLAY_EVENTS)).toHaveLength(REPLAY_EVENTS);
  expect(bus.since(bus.lastSeq - REPLAY_EVENTS - 1)).toBeUndefined();
  // Large records: what is kept stays under the byte bound.
  for (let i = 0; i < 50; i += 1) bus.publish('finished', record(500));
  const kept = bus.since(bus.lastSeq - 50);
  expect(kept).toBeUndefined();
  let bytes = 0;
  let n = 0;
  for (let id = bus.lastSeq - 1; bus.since(id) !== undefined; id -= 1) n += 1;
  for (const p of bus.since(bus.lastSeq - n)!) bytes += p.json.length;
  expect(n).toBeGreaterThan(0);
  expect(bytes).toBeLessThanOrEqual(REPLAY_BYTES);
});
