import { afterEach, expect, it } from 'vitest';
import { ScriptedAgent } from '../helpers/agents.js';
import { deployVersion, get, post, testServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('keeps the previous release current and marks the new one bad when an agent rolled back', async () => {
  const agent = new ScriptedAgent('host-a');
  server = await testServer({ agents: [agent] });
  await deployVersion(server.app, 'demo', '1.0.0');
  await deployVersion(server.app, 'demo', '2.0.0');
  agent.answers.set('3.0.0', { status: 'rolled-back', path: 'reload', reason: 'trial start never reached ready' });
  const body = await deployVersion(server.app, 'demo', '3.0.0');

  expect(body.deployment).toMatchObject({ status: 'rolled-back', reason: 'host-a: trial start never reached ready' });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0', previous: '1.0.0' });
  const bad = (await get(server.app, '/v1/apps/demo/releases/3.0.0')).json();
  expect(bad).toMatchObject({ bad: true, badReason: 'host-a: trial start never reached ready' });

  // A rollback without `to` goes to the newest good release before the current one.
  const rollback = await post(server.app, '/v1/apps/demo/rollback', {});
  expect(rollback.json().deployment).toMatchObject({ kind: 'rollback', version: '1.0.0', status: 'succeeded' });
  // Activating 3.0.0 by name is still allowed (the operator decided).
  agent.answers.delete('3.0.0');
  const named = await post(server.app, '/v1/apps/demo/rollback', { to: '3.0.0' });
  expect(named.json().deployment).toMatchObject({ version: '3.0.0', status: 'succeeded' });
});

it('brings hosts that took the release back to the previous one when another host failed', async () => {
  const good = new ScriptedAgent('host-good');
  const broken = new ScriptedAgent('host-broken');
  server = await testServer({ agents: [good, broken] });
  await deployVersion(server.app, 'demo', '1.0.0');
  broken.answers.set('2.0.0', { status: 'failed', path: 'reload', reason: 'worker crashed' });
  const body = await deployVersion(server.app, 'demo', '2.0.0');

  expect(body.deployment).toMatchObject({ status: 'failed' });
  expect(good.requests.at(-1)).toMatchObject({ version: '1.0.0', kind: 'rollback' });
  expect(broken.requests.at(-1)).toMatchObject({ version: '2.0.0' });
  expect(body.deployment.hosts).toContainEqual(expect.objectContaining({ host: 'host-good', reverted: true, status: 'succeeded' }));
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
  expect((await get(server.app, '/v1/apps/demo/releases/2.0.0')).json()).toMatchObject({ bad: false });
});
