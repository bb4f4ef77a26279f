import { expect } from 'vitest';
import { startServer } from '../../services/server/start-server.js';
import { makeBundle } from '../helpers/bundles.js';
import { inProcessHost } from '../helpers/in-process-host.js';
import { itWithNats, removeNats, startHost, testNames, useNatsServer } from '../helpers/nats.js';
import { TOKEN_CONFIG, TOKENS } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { clusterApp } from './fixtures.js';

const nats = useNatsServer();

itWithNats('startServer with nats: a push over HTTP reaches a host agent over NATS; GET /v1/agents lists it', async () => {
  const names = testNames();
  const { dir, cleanup } = await tempDir('hd-serve-nats-');
  const running = await startServer({ dataDir: `${dir}/service`, port: 0, localAgent: false, logger: false, tokens: TOKEN_CONFIG, nats: { nats: { servers: nats.url }, prefix: names.prefix } });
  const agent = inProcessHost('edge-1');
  const host = await startHost(names, agent, `${dir}/host-edge-1`);
  try {
    const auth = { authorization: `Bearer ${TOKENS.admin}` };
    const res = await fetch(`${running.url}/v1/apps/demo/releases/1.0.0`, {
      method: 'PUT', headers: { ...auth, 'content-type': 'application/gzip' }, body: await makeBundle(clusterApp('1.0.0')),
    });
    const body = await res.json() as { deployment: { status: string; hosts: unknown[] } };
    expect(res.status).toBe(201);
    expect(body.deployment).toMatchObject({ status: 'succeeded', hosts: [{ host: 'edge-1', status: 'succeeded', path: 'start' }] });
    expect(agent.served('demo')).toBe('1.0.0');
    const agents = await (await fetch(`${running.url}/v1/agents`, { headers: auth })).json() as { hosts: unknown[] };
    expect(agents.hosts).toEqual([expect.objectContaining({ host: 'edge-1', alive: true, apps: { demo: expect.objectContaining({ version: '1.0.0' }) } })]);
  } finally {
    await host.stop();
    await agent.close();
    await running.close();
    await removeNats(names);
    await cleanup();
  }
});
