import { afterEach, expect, it } from 'vitest';
import { deferred, ScriptedAgent } from '../helpers/agents.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { get, testServer, upload, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it('runs two uploads of one app one deployment at a time, in order, and accounts for both', async () => {
  const agent = new ScriptedAgent('host-a');
  const gate = deferred();
  agent.gate = gate.promise;
  server = await testServer({ agents: [agent] });
  const [b1, b2] = await Promise.all([makeBundle(appFiles('v1')), makeBundle(appFiles('v2'))]);

  const first = upload(server.app, 'demo', '1.0.0', b1);
  await waitFor('the first deployment to reach the agent', () => agent.requests.length === 1, 10_000);
  const second = upload(server.app, 'demo', '2.0.0', b2);
  // The second is stored and queued while the first deployment is still running.
  await waitFor('both releases stored', async () => (await get(server.app, '/v1/apps/demo/releases')).json().releases?.length === 2, 10_000);
  await waitFor('both deployments recorded', async () => (await get(server.app, '/v1/deployments?app=demo')).json().deployments?.length === 2, 10_000);
  // The one that waits is recorded `queued`; the one that started at once is recorded `running`.
  const recorded = (await get(server.app, '/v1/deployments?app=demo')).json().deployments as { version: string; status: string }[];
  expect(recorded.map((d) => [d.version, d.status]).sort()).toEqual([['1.0.0', 'running'], ['2.0.0', 'queued']]);
  expect(agent.requests).toHaveLength(1);
  gate.resolve();
  const [r1, r2] = await Promise.all([first, second]);

  expect(agent.maxRunning).toBe(1);
  expect(agent.requests.map((r) => r.version)).toEqual(['1.0.0', '2.0.0']);
  expect(r1.json().deployment).toMatchObject({ status: 'succeeded', version: '1.0.0', from: null });
  expect(r2.json().deployment).toMatchObject({ status: 'succeeded', version: '2.0.0', from: '1.0.0' });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0', previous: '1.0.0' });
  const list = (await get(server.app, '/v1/deployments?app=demo')).json();
  expect(list.deployments.map((d: { version: string }) => d.version).sort()).toEqual(['1.0.0', '2.0.0']);
});

it('answers 202 with ?wait=false, and the deployment can be followed by id', async () => {
  const agent = new ScriptedAgent('host-a');
  const gate = deferred();
  agent.gate = gate.promise;
  server = await testServer({ agents: [agent] });
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')), { query: '?wait=false' });
  expect(res.statusCode).toBe(202);
  const { id } = res.json().deployment;
  expect(['queued', 'running']).toContain(res.json().deployment.status);
  expect((await get(server.app, `/v1/deployments/${id}`)).json()).toMatchObject({ id, status: 'running' });
  gate.resolve();
  await waitFor('the deployment to finish', async () => (await get(server.app, `/v1/deployments/${id}`)).json().status === 'succeeded', 10_000);
  expect((await get(server.app, `/v1/deployments/${id}`)).json()).toMatchObject({ id, version: '1.0.0', workers: [{ host: 'host-a' }] });
});

it('answers 409 to one of two concurrent uploads of the same version with different bytes', async () => {
  server = await testServer();
  const [b1, b2] = await Promise.all([makeBundle(appFiles('one')), makeBundle(appFiles('two'))]);
  const results = await Promise.all([upload(server.app, 'demo', '1.0.0', b1), upload(server.app, 'demo', '1.0.0', b2)]);
  expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409]);
  expect((await get(server.app, '/v1/apps/demo/releases')).json().releases).toHaveLength(1);
});
