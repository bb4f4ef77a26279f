import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { plan } from '../../services/cli/commands/plan.js';
import { push } from '../../services/cli/commands/push.js';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { NO_AGENT_PLAN } from '../../services/server/routes/plan.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo, READER, startTestServer, type TestServer, writeApp, writeTgz } from './helpers.js';

// `hotdeploy plan` against a real server without a PM2 agent (the PM2 dry run itself is in
// test/pm2/plan.dry-run.test.ts): a plan is a report (exit 0), failures keep the CLI's codes.

let server: TestServer;
let work: string;
let cleanupWork: () => Promise<void>;

beforeAll(async () => {
  server = await startTestServer();
  ({ dir: work, cleanup: cleanupWork } = await tempDir('hotdeploy-cli-plan-'));
  const first = captureIo();
  expect(await push(server.client(), { source: await writeApp(path.join(work, 'v1'), '1.0.0'), app: 'hello' }, first.io), first.err()).toBe(ExitCode.ok);
});
afterAll(async () => {
  await server?.close();
  await cleanupWork?.();
});

async function current(): Promise<{ current: string | null; releases: unknown[] }> {
  return (await server.client().request<{ current: string | null; releases: unknown[] }>('GET', '/v1/apps/hello')).body;
}

it('plans a directory: exit 0, says no agent is attached and that nothing was deployed', async () => {
  const { io, out, err } = captureIo();
  const code = await plan(server.client(), { app: 'hello', source: await writeApp(path.join(work, 'v2'), '2.0.0', 'hi') }, io);
  expect(code, err()).toBe(ExitCode.ok);
  expect(err()).toMatch(/planning hello \(\d+ B, sha256 [0-9a-f]{12}\)/);
  expect(out()).toContain('plan of hello against 1.0.0: no host planned');
  expect(out()).toContain(NO_AGENT_PLAN);
  expect(out()).toContain('nothing was deployed');
  expect(await current()).toMatchObject({ current: '1.0.0', releases: [expect.anything()] });
});

it('plans a .tgz through runCli with --json that parses', async () => {
  const { io, out, err } = captureIo();
  const file = await writeTgz(path.join(work, 'tgz'), '3.0.0', 'tgz');
  const code = await runCli(['plan', 'hello', file, '--json', '--server', server.url, '--token', 'test-admin-token'], io);
  expect(code, err()).toBe(ExitCode.ok);
  expect(err()).toBe('');
  const answer = JSON.parse(out()) as { app: string; current: string; hosts: unknown[]; bundle: { files: number } };
  expect(answer).toMatchObject({ app: 'hello', current: '1.0.0', hosts: [], bundle: { files: 4 } });
});

it('a bad bundle: exit 4 with the server\'s code; a read-only token: exit 4, 403; a missing source: exit 2', async () => {
  const bad = path.join(work, 'bad.tgz');
  await writeFile(bad, 'not gzip');
  const one = captureIo();
  expect(await runCli(['plan', 'hello', bad, '--server', server.url, '--token', 'test-admin-token'], one.io)).toBe(ExitCode.rejected);
  expect(one.err()).toContain('DEPLOY_ERR_NOT_GZIP (HTTP 422)');

  const two = captureIo();
  const dir = await writeApp(path.join(work, 'v4'), '4.0.0');
  expect(await runCli(['plan', 'hello', dir, '--server', server.url, '--token', READER], two.io)).toBe(ExitCode.rejected);
  expect(two.err()).toContain('DEPLOY_ERR_FORBIDDEN (HTTP 403)');

  const three = captureIo();
  expect(await runCli(['plan', 'hello', path.join(work, 'nope'), '--server', server.url], three.io)).toBe(ExitCode.usage);
  expect(three.err()).toContain('CLI_ERR_SOURCE');
  expect(await current()).toMatchObject({ current: '1.0.0', releases: [expect.anything()] });
});
