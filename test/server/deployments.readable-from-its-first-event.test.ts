import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { deployVersion, post, testServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// A client that sees a deployment's `queued` event and asks for that deployment at once (the
// dashboard does, for a deployment it has no row for) gets it, even before its first record is on
// disk: a rollback chooses its target before it runs, an auto-rollback checks its cause first.

let server: TestServer;
afterEach(() => server.close());

/** Follows the event stream; on each `queued` event, GETs that deployment at once and keeps the status. */
async function askOnQueued(port: number): Promise<{ answers: { id: string; status: number }[]; close: () => void }> {
  const answers: { id: string; status: number }[] = [];
  const asked = new Set<string>();
  let opened!: () => void;
  const open = new Promise<void>((resolve) => { opened = resolve; });
  const req = http.get({ host: '127.0.0.1', port, path: '/v1/events', headers: { authorization: `Bearer ${TOKENS.reader}` } }, (res) => {
    res.setEncoding('utf8');
    opened();
    res.on('data', (chunk: string) => {
      for (const match of chunk.matchAll(/^data: (.*)$/gm)) {
        const event = JSON.parse(match[1] ?? '{}') as { type: string; deploymentId: string };
        if (event.type !== 'queued' || asked.has(event.deploymentId)) continue;
        asked.add(event.deploymentId);
        http.get({ host: '127.0.0.1', port, path: `/v1/deployments/${event.deploymentId}`, headers: { authorization: `Bearer ${TOKENS.reader}` } }, (answer) => {
          answers.push({ id: event.deploymentId, status: answer.statusCode ?? 0 });
          answer.resume();
        });
      }
    });
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  await open;
  return { answers, close: () => req.destroy() };
}

it('answers GET /v1/deployments/:id for a deployment from its queued event on', async () => {
  server = await testServer({ agents: [new ScriptedAgent('host-a')] });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as AddressInfo;
  for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) await deployVersion(server.app, 'demo', version);
  const stream = await askOnQueued(port);

  const ids: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    const res = await post(server.app, '/v1/apps/demo/rollback', {});
    expect(res.statusCode).toBe(200);
    ids.push((res.json() as { deployment: { id: string } }).deployment.id);
  }
  await waitFor('an answer for every rollback', () => ids.every((id) => stream.answers.some((a) => a.id === id)), 10_000);
  stream.close();
  expect(stream.answers.filter((a) => ids.includes(a.id)).map((a) => a.status)).toEqual([200, 200, 200]);
});
