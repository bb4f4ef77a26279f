import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { get, testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('a deployment whose audit entries cannot be written still goes live and says so; each lost entry is logged whole at error level', async () => {
  const lines: { msg?: string; level?: number; audit?: { what?: string; outcome?: string; version?: string } }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as object);
      callback();
    },
  });
  server = await testServer({ agents: [new ScriptedAgent('host-a')], logger: { level: 'info', stream } });
  // A folder where the audit log's file goes: every append fails (EISDIR), as on a full or read-only disk.
  await mkdir(path.join(server.dataDir, 'audit.log'));

  const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('demo@1.0.0')));
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json()).toMatchObject({ created: true, deployment: { status: 'succeeded' } });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });

  const lost = lines.filter((l) => l.msg?.startsWith('audit log append failed'));
  expect(lost.map((l) => [l.level, l.audit?.what, l.audit?.outcome])).toEqual([
    [50, 'upload', 'created'],
    [50, 'push', 'succeeded'],
  ]);
  // A refused upload's entry is logged the same way, and the refusal is unchanged.
  const bad = await upload(server.app, 'demo', '2.0.0', Buffer.from('not a bundle'));
  expect(bad.statusCode).toBe(422);
  expect(bad.json()).toMatchObject({ code: 'DEPLOY_ERR_NOT_GZIP' });
  expect(lines.filter((l) => l.msg?.startsWith('audit log append failed')).at(-1)?.audit).toMatchObject({ what: 'upload', outcome: 'rejected', version: '2.0.0' });
  expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
});
