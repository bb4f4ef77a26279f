import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../services/cli/errors.js';
import { handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { pm2Home } from '../helpers/pm2.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { cleanEnv, runMain, type ServeProcess, startServe } from './processes.js';

// The README quick start as CI would drive it: `hotdeploy serve` (with its PM2 agent, a real PM2
// daemon in a temp PM2_HOME) and `hotdeploy push` / `rollback` as child processes, reading the
// outcome table and the exit code of real worker outcomes: started, hot, rolled-back.

let serve: ServeProcess;
let env: NodeJS.ProcessEnv;
let port: number;
let work: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  const home = await pm2Home();
  const scratch = await tempDir('hotdeploy-cli-pm2-');
  cleanups.push(home.cleanup, scratch.cleanup);
  work = scratch.dir;
  port = await freePort();
  serve = startServe(['--port', '0', '--data-dir', path.join(work, 'data'), '--pm2-home', home.home], cleanEnv());
  const [, url] = await serve.waitFor(/hotdeploy serving on (http:\/\/\S+)/);
  const [, token] = await serve.waitFor(/admin token \(shown this once[^:]*\): (\S+)/);
  env = cleanEnv({ HOTDEPLOY_SERVER: url, HOTDEPLOY_TOKEN: token });
});
afterAll(async () => {
  await serve?.stop();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function appDir(name: string, files: Record<string, string | object>): Promise<string> {
  const dir = path.join(work, name);
  await writeTree(dir, files);
  return dir;
}

/** The outcome column of each worker row of the table. */
function outcomes(stdout: string): string[] {
  return [...stdout.matchAll(/^│ \S+#\d+\s+│ \d+\s+│ (\S+)/gm)].map((m) => m[1] as string);
}

describe('push and rollback under PM2, as child processes', () => {
  let firstPids: number[];

  it('the first push starts the workers: exit 0, outcome started', async () => {
    const dir = await appDir('v1', handlerApp({ name: 'web', version: '1', port, message: 'one' }));
    const result = await runMain(['push', dir, '--app', 'web', '--version', '1'], env);
    expect(result.code, result.stderr).toBe(ExitCode.ok);
    expect(outcomes(result.stdout)).toEqual(['started', 'started']);
    firstPids = (await pidsServing(port, 2)).pids;
  });

  it('a changed module goes hot: exit 0, outcome hot, same pids, new answer', async () => {
    const dir = await appDir('v2', handlerApp({ name: 'web', version: '2', port, message: 'two' }));
    const result = await runMain(['push', dir, '--app', 'web', '--version', '2'], env);
    expect(result.code, result.stderr).toBe(ExitCode.ok);
    expect(outcomes(result.stdout)).toEqual(['hot', 'hot']);
    expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['two'] });
  });

  it('rollback goes hot back to the previous release; --json parses', async () => {
    const result = await runMain(['rollback', 'web', '--json'], env);
    expect(result.code, result.stderr).toBe(ExitCode.ok);
    const answer = JSON.parse(result.stdout) as { deployment: { version: string; workers: Array<{ outcome: string }> } };
    expect(answer.deployment.version).toBe('1');
    expect(answer.deployment.workers.map((w) => w.outcome)).toEqual(['hot', 'hot']);
    expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['one'] });
    const status = await runMain(['status', 'web'], env);
    expect(status.stdout).toContain('web: current 1, previous 2');
    expect([...status.stdout.matchAll(/^│ \S+#\d+\s+│ (\d+)\s+│ (\S+)\s+│ online/gm)].map((m) => [Number(m[1]), m[2]])
      .sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual(firstPids.map((pid) => [pid, '1']));
  });

  it('a release that throws at start is rolled back: exit 1 with the reason, the old one still serves', async () => {
    const broken = handlerApp({ name: 'web', version: '3', port, message: 'three' });
    broken['index.js'] = `${String(broken['index.js'])}\nthrow new Error('boom at start');\n`;
    const dir = await appDir('v3', broken);
    const result = await runMain(['push', dir, '--app', 'web', '--version', '3'], env);
    expect(result.code).toBe(ExitCode.deployFailed);
    expect(result.stdout).toMatch(/web@3: rolled-back \(.*boom at start/);
    expect(outcomes(result.stdout)).toEqual(['rolled-back', 'rolled-back']);
    expect((await pidsServing(port, 2)).messages).toEqual(['one']);
  });

  it('after a rolled-back release, the next push goes hot again', async () => {
    // The rollback may have restarted workers whose hot update had failed: compare with now.
    const before = (await pidsServing(port, 2)).pids;
    const dir = await appDir('v4', handlerApp({ name: 'web', version: '4', port, message: 'four' }));
    const result = await runMain(['push', dir, '--app', 'web', '--version', '4'], env);
    expect(result.code, result.stderr).toBe(ExitCode.ok);
    expect(outcomes(result.stdout), result.stdout).toEqual(['hot', 'hot']);
    expect(await pidsServing(port, 2)).toEqual({ pids: before, messages: ['four'] });
  });
});
