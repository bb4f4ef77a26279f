import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { openEvents } from '../helpers/sse.js';
import { deployVersion, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

interface Received { type: string; app: string; version: string; deploymentId: string; status: string; agent?: { message: string } }

function subscribe(port: number, query = ''): Promise<{ events: { event?: string; data: Received }[]; status: number; close: () => void }> {
  return openEvents<Received>(port, TOKENS.admin, { query }).then((s) => ({ events: s.frames, status: s.status, close: s.close }));
}

it('streams queued, started, agent and finished events of each deployment', async () => {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  const all = await subscribe(port);
  const onlyOther = await subscribe(port, '?app=other');
  expect(all.status).toBe(200);

  const body = await deployVersion(server.app, 'demo', '1.0.0');
  await waitFor('the finished event', () => all.events.some((e) => e.data.type === 'finished'), 10_000);
  expect(all.events.map((e) => e.data.type)).toEqual(['queued', 'started', 'agent', 'agent', 'finished']);
  for (const e of all.events) {
    expect(e.event).toBe('deployment');
    expect(e.data).toMatchObject({ app: 'demo', version: '1.0.0', deploymentId: body.deployment.id });
  }
  expect(all.events[2]?.data.agent?.message).toBe('host-a activating 1.0.0');
  expect(all.events.at(-1)?.data.status).toBe('succeeded');
  expect(onlyOther.events).toEqual([]);
  // close() ends open streams instead of waiting for them forever.
  await server.app.close();
});
