import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activate } from '../../services/cli/commands/activate.js';
import { push } from '../../services/cli/commands/push.js';
import { releases } from '../../services/cli/commands/releases.js';
import { rollback } from '../../services/cli/commands/rollback.js';
import { status } from '../../services/cli/commands/status.js';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { tempDir } from '../helpers/tmp.js';
import { ADMIN, captureIo, startTestServer, type TestServer, writeApp, writeTgz } from './helpers.js';

let server: TestServer;
let work: string;
let cleanupWork: () => Promise<void>;

beforeAll(async () => {
  server = await startTestServer();
  ({ dir: work, cleanup: cleanupWork } = await tempDir('hotdeploy-cli-work-'));
});
afterAll(async () => {
  await server?.close();
  await cleanupWork?.();
});

async function currentOf(app: string): Promise<string | null> {
  const { body } = await server.client().request<{ current: string | null }>('GET', `/v1/apps/${app}`);
  return body.current;
}

describe('push, in-process against a real server', () => {
  it('packs a directory, uploads it and prints the release and the deployment', async () => {
    const dir = await writeApp(path.join(work, 'dir-1'), '1.0.0');
    const { io, out, err } = captureIo();
    const code = await push(server.client(), { source: dir, app: 'hello' }, io);
    expect(err()).toContain('pushing hello@1.0.0');
    expect(out()).toMatch(/release hello@1\.0\.0 stored \(3 files/);
    expect(out()).toMatch(/deployment \S+ hello@1\.0\.0: succeeded/);
    expect(out()).toContain('no workers');
    expect(code).toBe(ExitCode.ok);
    expect(await currentOf('hello')).toBe('1.0.0');
  });

  it('uploads a .tgz as is, with --json output that parses and carries its sha256', async () => {
    const file = await writeTgz(path.join(work, 'tgz-2'), '2.0.0', 'hi v2');
    const { io, out, err } = captureIo();
    const code = await push(server.client(), { source: file, app: 'hello', json: true }, io);
    expect(code).toBe(ExitCode.ok);
    const answer = JSON.parse(out()) as { release: { version: string; sha256: string }; created: boolean; deployment: { status: string } };
    expect(answer.release.version).toBe('2.0.0');
    expect(answer.release.sha256).toBe(createHash('sha256').update(await readFile(file)).digest('hex'));
    expect(answer.created).toBe(true);
    expect(answer.deployment.status).toBe('succeeded');
    expect(err()).toBe('');
    expect(await currentOf('hello')).toBe('2.0.0');
  });

  it('draws an upload bar only on a terminal and never with --json', async () => {
    const tty = captureIo(true);
    const dir = await writeApp(path.join(work, 'dir-3'), '3.0.0', 'three');
    expect(await push(server.client(), { source: dir, app: 'bar', version: '1' }, tty.io)).toBe(ExitCode.ok);
    expect(tty.err()).toMatch(/upload \[.*\] 100%/);

    const ttyJson = captureIo(true);
    expect(await push(server.client(), { source: dir, app: 'bar', version: '2', json: true }, ttyJson.io)).toBe(ExitCode.ok);
    expect(ttyJson.err()).not.toContain('upload [');

    const pipe = captureIo(false);
    expect(await push(server.client(), { source: dir, app: 'bar', version: '3' }, pipe.io)).toBe(ExitCode.ok);
    expect(pipe.err()).not.toContain('upload [');
  });

  it('stores without activating (--no-activate), then activate, rollback and the read commands', async () => {
    const dir = await writeApp(path.join(work, 'dir-4'), '4.0.0', 'four');
    const stored = captureIo();
    expect(await push(server.client(), { source: dir, app: 'hello', activate: false }, stored.io)).toBe(ExitCode.ok);
    expect(stored.out()).toContain('not activated (--no-activate)');
    expect(await currentOf('hello')).toBe('2.0.0');

    const activated = captureIo();
    expect(await activate(server.client(), { app: 'hello', version: '4.0.0' }, activated.io)).toBe(ExitCode.ok);
    expect(activated.out()).toMatch(/hello@4\.0\.0: succeeded/);
    expect(await currentOf('hello')).toBe('4.0.0');

    const rolledBack = captureIo();
    expect(await rollback(server.client(), { app: 'hello', json: true }, rolledBack.io)).toBe(ExitCode.ok);
    expect(JSON.parse(rolledBack.out())).toMatchObject({ deployment: { kind: 'rollback', version: '2.0.0', status: 'succeeded' } });
    expect(await currentOf('hello')).toBe('2.0.0');

    const table = captureIo();
    expect(await releases(server.client(), { app: 'hello' }, table.io)).toBe(ExitCode.ok);
    expect(table.out()).toMatch(/2\.0\.0 .*current/);
    expect(table.out()).toMatch(/4\.0\.0 .*previous/);
    const all = captureIo();
    expect(await status(server.client(), { json: true }, all.io)).toBe(ExitCode.ok);
    const apps = (JSON.parse(all.out()) as { apps: Array<{ name: string; current: string }> }).apps;
    expect(apps.find((a) => a.name === 'hello')?.current).toBe('2.0.0');
    const one = captureIo();
    expect(await status(server.client(), { app: 'hello' }, one.io)).toBe(ExitCode.ok);
    expect(one.out()).toContain('hello: current 2.0.0, previous 4.0.0');
  });

  it('returns once the deployment is queued with --no-wait (202), exit 0', async () => {
    const dir = await writeApp(path.join(work, 'nowait'), '7.0.0', 'seven');
    const { io, out } = captureIo();
    expect(await push(server.client(), { source: dir, app: 'nowait', wait: false }, io)).toBe(ExitCode.ok);
    expect(out()).toContain('deployment queued (--no-wait)');
    expect(out()).toMatch(/deployment \S+ nowait@7\.0\.0: (queued|running|succeeded)/);
  });

  it('pushing the same version with the same bytes again is idempotent', async () => {
    const dir = await writeApp(path.join(work, 'dir-1'), '1.0.0');
    const again = captureIo();
    expect(await push(server.client(), { source: dir, app: 'hello', version: '2.0.0-same' }, again.io)).toBe(ExitCode.ok);
    const twice = captureIo();
    expect(await push(server.client(), { source: dir, app: 'hello', version: '2.0.0-same' }, twice.io)).toBe(ExitCode.ok);
    expect(twice.out()).toContain('already stored with the same bytes');
  });
});

describe('runCli maps arguments to commands and failures to exit codes', () => {
  it('runs push from argv with --server / --token and from HOTDEPLOY_SERVER / HOTDEPLOY_TOKEN', async () => {
    const dir = await writeApp(path.join(work, 'argv'), '5.0.0', 'five');
    const flags = captureIo();
    expect(await runCli(['push', dir, '--app', 'argv', '--server', server.url, '--token', ADMIN, '--json'], flags.io, {}))
      .toBe(ExitCode.ok);
    expect(JSON.parse(flags.out())).toMatchObject({ release: { app: 'argv', version: '5.0.0' } });
    const env = captureIo();
    expect(await runCli(['releases', 'argv', '--json'], env.io, { HOTDEPLOY_SERVER: server.url, HOTDEPLOY_TOKEN: ADMIN }))
      .toBe(ExitCode.ok);
    expect(JSON.parse(env.out())).toMatchObject({ app: 'argv', current: '5.0.0' });
  });

  it('refuses unknown options and missing arguments with CLI_ERR_USAGE (exit 2) before any request', async () => {
    const typo = captureIo();
    expect(await runCli(['push', '.', '--app', 'x', '--verison', '2'], typo.io, {})).toBe(ExitCode.usage);
    expect(typo.err()).toBe('error CLI_ERR_USAGE: invalid arguments: unknown option --verison\n');
    const missing = captureIo();
    expect(await runCli(['push', '.'], missing.io, {})).toBe(ExitCode.usage);
    expect(missing.err()).toMatch(/^error CLI_ERR_USAGE: .*--app/);
    const unknown = captureIo();
    expect(await runCli(['deploy'], unknown.io, {})).toBe(ExitCode.usage);
    expect(unknown.err()).toContain('unknown command "deploy"');
  });
});
