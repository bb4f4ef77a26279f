import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { ADMIN, captureIo, OTHER_APP, READER, startTestServer, type TestServer, writeApp } from './helpers.js';

let server: TestServer;
let work: string;
let cleanupWork: () => Promise<void>;

beforeAll(async () => {
  server = await startTestServer({ maxBundleBytes: 64 * 1024 });
  ({ dir: work, cleanup: cleanupWork } = await tempDir('hotdeploy-cli-errors-'));
  const first = captureIo();
  const dir = await writeApp(path.join(work, 'v1'), '1.0.0');
  if (await runCli(['push', dir, '--app', 'hello'], first.io, env(ADMIN)) !== ExitCode.ok) throw new Error(first.err());
});
afterAll(async () => {
  await server?.close();
  await cleanupWork?.();
});

function env(token?: string): NodeJS.ProcessEnv {
  return { HOTDEPLOY_SERVER: server.url, ...(token ? { HOTDEPLOY_TOKEN: token } : {}) };
}

/** Runs the CLI and returns its exit code and its one error line. */
async function fails(argv: string[], token?: string): Promise<{ code: number; line: string; out: string }> {
  const { io, out, err } = captureIo();
  const code = await runCli(argv, io, env(token));
  return { code, line: err().split('\n').filter((l) => l.startsWith('error ')).join('\n'), out: out() };
}

/** Every rejection leaves what is deployed as it was. */
async function expectCurrentUnchanged(): Promise<void> {
  const { body } = await server.client().request<{ current: string; releases: unknown[] }>('GET', '/v1/apps/hello');
  expect(body.current).toBe('1.0.0');
}

describe('every failure is one line with the server\'s code and a stable exit code', () => {
  it('a missing token: 401 DEPLOY_ERR_UNAUTHORIZED, exit 4', async () => {
    const dir = await writeApp(path.join(work, 'v2'), '2.0.0', 'two');
    const result = await fails(['push', dir, '--app', 'hello']);
    expect(result).toMatchObject({ code: ExitCode.rejected, line: expect.stringMatching(/^error DEPLOY_ERR_UNAUTHORIZED \(HTTP 401\): .*HOTDEPLOY_TOKEN\)$/) });
    await expectCurrentUnchanged();
  });

  it('a wrong token: 401 DEPLOY_ERR_UNAUTHORIZED, exit 4', async () => {
    const result = await fails(['status', 'hello'], 'not-a-token');
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.line).toMatch(/^error DEPLOY_ERR_UNAUTHORIZED \(HTTP 401\)/);
  });

  it('a read-only token, and a token of another app: 403 DEPLOY_ERR_FORBIDDEN, exit 4', async () => {
    const dir = await writeApp(path.join(work, 'v2'), '2.0.0', 'two');
    const reader = await fails(['push', dir, '--app', 'hello'], READER);
    expect(reader.code).toBe(ExitCode.rejected);
    expect(reader.line).toMatch(/^error DEPLOY_ERR_FORBIDDEN \(HTTP 403\): .*push/);
    const other = await fails(['rollback', 'hello'], OTHER_APP);
    expect(other.code).toBe(ExitCode.rejected);
    expect(other.line).toMatch(/^error DEPLOY_ERR_FORBIDDEN \(HTTP 403\)/);
    await expectCurrentUnchanged();
  });

  it('the same version with other bytes: 409 DEPLOY_ERR_VERSION_CONFLICT, exit 4', async () => {
    const dir = await writeApp(path.join(work, 'conflict'), '1.0.0', 'other bytes');
    const result = await fails(['push', dir, '--app', 'hello'], ADMIN);
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.line).toMatch(/^error DEPLOY_ERR_VERSION_CONFLICT \(HTTP 409\)/);
    await expectCurrentUnchanged();
  });

  // 4 MiB against a 64 KiB limit: the server answers and closes long before the body is sent, the
  // case where the reset can swallow its answer (client.ts asks again with the headers alone).
  it('a bundle over maxBundleBytes: 413 DEPLOY_ERR_BUNDLE_TOO_LARGE, exit 4, every time', async () => {
    const dir = await writeApp(path.join(work, 'big'), '3.0.0', 'big');
    // Random bytes do not compress: the packed bundle stays over the server's limit.
    await writeFile(path.join(dir, 'greeting.js'), `exports.greeting = () => '${randomBytes(3 * 1024 * 1024).toString('base64')}';\n`);
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await fails(['push', dir, '--app', 'hello'], ADMIN);
      expect(result.code).toBe(ExitCode.rejected);
      expect(result.line).toMatch(/^error DEPLOY_ERR_BUNDLE_TOO_LARGE \(HTTP 413\)/);
    }
    const wrongToken = await fails(['push', dir, '--app', 'hello'], 'not-a-token');
    expect(wrongToken.line).toMatch(/^error DEPLOY_ERR_UNAUTHORIZED \(HTTP 401\)/);
    await expectCurrentUnchanged();
  });

  it('a bad bundle (not gzip): 422 DEPLOY_ERR_NOT_GZIP, exit 4', async () => {
    const file = path.join(work, 'bad.tgz');
    await writeFile(file, 'this is not a gzip file\n');
    const result = await fails(['push', file, '--app', 'hello', '--version', '9'], ADMIN);
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.line).toMatch(/^error DEPLOY_ERR_NOT_GZIP \(HTTP 422\)/);
    await expectCurrentUnchanged();
  });

  it('a bundle without a valid manifest: 422 DEPLOY_ERR_ENTRY, exit 4', async () => {
    const dir = path.join(work, 'no-entry');
    await writeTree(dir, { 'package.json': { name: 'hello', version: '6.0.0', main: 'missing.js' }, 'index.js': '' });
    const result = await fails(['push', dir, '--app', 'hello'], ADMIN);
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.line).toMatch(/^error DEPLOY_ERR_ENTRY \(HTTP 422\)/);
    await expectCurrentUnchanged();
  });

  it('an invalid app name or version: refused before packing with the service\'s pattern (exit 2), 400 from the server (exit 4)', async () => {
    const dir = await writeApp(path.join(work, 'v2'), '2.0.0', 'two');
    const name = await fails(['push', dir, '--app', 'Bad_Name'], ADMIN);
    expect(name.code).toBe(ExitCode.usage);
    expect(name.line).toMatch(/^error CLI_ERR_USAGE: .*--app "Bad_Name" does not match/);
    const version = await fails(['push', dir, '--app', 'hello', '--version', '../x'], ADMIN);
    expect(version.code).toBe(ExitCode.usage);
    expect(version.line).toMatch(/--version "\.\.\/x" does not match/);
    const server = await fails(['rollback', 'Bad_Name'], ADMIN);
    expect(server.code).toBe(ExitCode.rejected);
    expect(server.line).toMatch(/^error DEPLOY_ERR_\w+ \(HTTP 400\)/);
  });

  it('an unknown app: 404 DEPLOY_ERR_APP_NOT_FOUND, exit 4', async () => {
    const result = await fails(['releases', 'nope'], ADMIN);
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.line).toMatch(/^error DEPLOY_ERR_APP_NOT_FOUND \(HTTP 404\)/);
  });

  it('an unreachable server: CLI_ERR_UNREACHABLE naming the address, exit 3, no stack', async () => {
    const { io, err } = captureIo();
    // Port 1 on loopback: nothing listens there (and it is below the unprivileged range).
    const code = await runCli(['status', '--server', 'http://127.0.0.1:1'], io, {});
    expect(code).toBe(ExitCode.unreachable);
    expect(err()).toBe('error CLI_ERR_UNREACHABLE: cannot reach the hotdeploy server: http://127.0.0.1:1 (ECONNREFUSED); '
      + 'is `hotdeploy serve` running there? Set --server or HOTDEPLOY_SERVER\n');
  });

  it('a server URL that is not one: CLI_ERR_USAGE, exit 2', async () => {
    const { io, err } = captureIo();
    expect(await runCli(['status', '--server', 'localhost:7070'], io, {})).toBe(ExitCode.usage);
    expect(err()).toMatch(/^error CLI_ERR_USAGE: .*http:\/\//);
  });
});
