import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { get, testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('logs one structured line per request and per deployment event, with app, version and deployment id', async () => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  server = await testServer({ logger: { level: 'info', stream } });
  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')));
  const id = res.json().deployment.id;
  await get(server.app, '/v1/apps/nope');

  const requests = lines.filter((l) => l.msg === 'request');
  expect(requests).toEqual([
    expect.objectContaining({ method: 'PUT', statusCode: 201, app: 'demo', version: '1.0.0', token: 'admin' }),
    expect.objectContaining({ method: 'GET', statusCode: 404, app: 'nope', code: 'DEPLOY_ERR_APP_NOT_FOUND' }),
  ]);
  const events = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('deployment '));
  expect(events.map((l) => l.event)).toEqual(['queued', 'started', 'finished']);
  for (const e of events) expect(e).toMatchObject({ app: 'demo', version: '1.0.0', deploymentId: id });
  // Nothing else per request: no "incoming request" / "request completed" pairs.
  expect(lines.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed')).toEqual([]);
});
