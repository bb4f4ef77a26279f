import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { deferred, ScriptedAgent } from '../helpers/agents.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { testServer, TOKENS, upload, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it('lets a running deployment finish on close, and answers 503 DEPLOY_ERR_SHUTTING_DOWN meanwhile', async () => {
  const agent = new ScriptedAgent('host-a');
  const gate = deferred();
  agent.gate = gate.promise;
  server = await testServer({ agents: [agent] });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')), { query: '?wait=false' });
  expect(res.statusCode).toBe(202);
  await waitFor('the deployment to reach the agent', () => agent.requests.length === 1, 10_000);

  const closed = server.app.close();
  const during = await fetch(`${url}/v1/apps`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(during.status).toBe(503);
  expect(await during.json()).toEqual({ statusCode: 503, code: 'DEPLOY_ERR_SHUTTING_DOWN', message: expect.any(String) });

  gate.resolve();
  await closed;
  // The deployment finished before the server closed: its record on disk says so.
  const saved = JSON.parse(await readFile(`${server.dataDir}/deployments/${res.json().deployment.id}.json`, 'utf8'));
  expect(saved).toMatchObject({ status: 'succeeded' });
});
