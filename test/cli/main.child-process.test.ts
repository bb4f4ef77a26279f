import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../services/cli/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { writeApp, writeTgz } from './helpers.js';
import { cleanEnv, MAIN, runMain, type ServeProcess, startServe } from './processes.js';

let serve: ServeProcess;
let work: string;
let cleanupWork: () => Promise<void>;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('hotdeploy-cli-child-'));
  serve = startServe(['--port', '0', '--data-dir', path.join(work, 'data'), '--no-local-agent'], cleanEnv());
  const [, url] = await serve.waitFor(/hotdeploy serving on (http:\/\/\S+)/);
  const [, token] = await serve.waitFor(/admin token \(shown this once[^:]*\): (\S+)/);
  env = cleanEnv({ HOTDEPLOY_SERVER: url, HOTDEPLOY_TOKEN: token });
});
afterAll(async () => {
  await serve?.stop();
  await cleanupWork?.();
});

describe('hotdeploy as a child process against `hotdeploy serve`', () => {
  it('ends with its own exit code when its reader closed the pipe early (| head), not with an EPIPE', async () => {
    const child = spawn(process.execPath, [MAIN, '--help'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // The read end goes before the command writes a line.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(ExitCode.ok);
  });

  it('pushes a directory: outcome on stdout, exit 0, no progress bar when not a terminal', async () => {
    const dir = await writeApp(path.join(work, 'app'), '1.0.0');
    const result = await runMain(['push', dir, '--app', 'hello'], env);
    expect(result.stderr).not.toContain('upload [');
    expect(result.stdout).toMatch(/release hello@1\.0\.0 stored/);
    expect(result.stdout).toMatch(/hello@1\.0\.0: succeeded/);
    expect(result.code).toBe(ExitCode.ok);
  });

  it('pushes a .tgz with --json: stdout is exactly the JSON answer', async () => {
    const file = await writeTgz(path.join(work, 'tgz'), '2.0.0', 'two');
    const result = await runMain(['push', file, '--app', 'hello', '--json'], env);
    expect(result.code).toBe(ExitCode.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ release: { version: '2.0.0' }, deployment: { status: 'succeeded' } });
    expect(result.stderr).toBe('');
  });

  it('status, releases and rollback as JSON', async () => {
    const rolledBack = await runMain(['rollback', 'hello', '--to', '1.0.0', '--json'], env);
    expect(rolledBack.code).toBe(ExitCode.ok);
    expect(JSON.parse(rolledBack.stdout)).toMatchObject({ deployment: { kind: 'rollback', version: '1.0.0' } });
    const status = await runMain(['status', 'hello', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: 'hello', current: '1.0.0', previous: '2.0.0' });
    const releases = await runMain(['releases', 'hello'], env);
    expect(releases.stdout).toMatch(/1\.0\.0 .*current/);
  });

  it('a bad bundle exits 4 with the server\'s code; the current release stays', async () => {
    const file = path.join(work, 'bad.tgz');
    await writeFile(file, 'not gzip');
    const result = await runMain(['push', file, '--app', 'hello', '--version', '3'], env);
    expect(result.code).toBe(ExitCode.rejected);
    expect(result.stderr).toMatch(/\nerror DEPLOY_ERR_NOT_GZIP \(HTTP 422\): [^\n]+\n$/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const status = await runMain(['status', 'hello', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ current: '1.0.0' });
  });

  it('an unreachable server exits 3 with one line, no stack trace', async () => {
    const result = await runMain(['status'], cleanEnv({ HOTDEPLOY_SERVER: 'http://127.0.0.1:1' }));
    expect(result.code).toBe(ExitCode.unreachable);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('CLI_ERR_UNREACHABLE');
  });

  // A real terminal from util-linux `script`, to see the bar where it belongs.
  it.skipIf(!existsSync('/usr/bin/script'))('draws the upload bar on a terminal', async () => {
    const dir = await writeApp(path.join(work, 'tty'), '4.0.0', 'four');
    const { execFile } = await import('node:child_process');
    const command = `"${process.execPath}" dist/services/cli/main.js push "${dir}" --app tty`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile('/usr/bin/script', ['-qfec', command, '/dev/null'], { env, cwd: path.resolve('.'), timeout: 60_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    expect(output).toMatch(/upload \[.*\] 100%/);
    expect(output).toMatch(/tty@4\.0\.0: succeeded/);
  });
});

describe('hotdeploy serve --example (npm start)', () => {
  it('pushes the example app on the first start only', async () => {
    const data = path.join(work, 'example-data');
    const first = startServe(['--port', '0', '--data-dir', data, '--no-local-agent', '--example', 'examples/hello'], cleanEnv());
    try {
      const [, token] = await first.waitFor(/admin token \(shown this once[^:]*\): (\S+)/);
      await first.waitFor(/example hello is current \(--no-local-agent/);
      expect(first.output()).toContain('pushing the example app hello');
      expect(first.output()).toMatch(/hello@1\.0\.0: succeeded/);
      expect(await first.stop()).toBe(0);

      const again = startServe(['--port', '0', '--data-dir', data, '--no-local-agent', '--example', 'examples/hello'],
        cleanEnv({ HOTDEPLOY_TOKEN: token }));
      await again.waitFor(/example hello is current/);
      expect(again.output()).not.toContain('pushing the example app');
      expect(again.output()).not.toContain('admin token');
      expect(await again.stop()).toBe(0);
    } finally {
      await first.stop();
    }
  });
});

describe('hotdeploy serve log lines', () => {
  it('are pino JSON when stdout is not a terminal, readable lines with --log-format pretty', async () => {
    expect(serve.output()).toMatch(/^\{"level":30,/m);
    const pretty = startServe(['--port', '0', '--data-dir', path.join(work, 'pretty-data'), '--no-local-agent', '--log-format', 'pretty'], cleanEnv());
    try {
      const [, url] = await pretty.waitFor(/hotdeploy serving on (http:\/\/\S+)/);
      await fetch(`${url}/healthz`);
      await pretty.waitFor(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}request .*url=\/healthz/m);
      expect(pretty.output()).not.toContain('{"level"');
    } finally {
      await pretty.stop();
    }
  });
});
