import { createHash } from 'node:crypto';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { push } from '../../services/cli/commands/push.js';
import { serve } from '../../services/cli/commands/serve.js';
import { Client } from '../../services/cli/client.js';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { readTokensFile } from '../../services/cli/tokens-file.js';
import type { RunningServer } from '../../services/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo, writeApp } from './helpers.js';

// `hotdeploy serve --tokens FILE`: the CI examples' "a token with push for one app", made real.
// A real server (no PM2 agent), real pushes through the CLI, and every malformed file refused at start.

const ADMIN = 'admin-secret-kept-as-a-digest';
const CI = 'ci-token-for-hello-only-0123';

let work: string;
let cleanup: () => Promise<void>;
let running: RunningServer;
let started: ReturnType<typeof captureIo>;

async function tokensFile(name: string, content: unknown): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir('hotdeploy-tokens-'));
  const file = await tokensFile('tokens.json', [
    { name: 'admin', sha256: createHash('sha256').update(ADMIN).digest('hex') },
    { name: 'ci-hello', token: CI, apps: ['hello'], actions: ['push', 'read'] },
  ]);
  started = captureIo();
  running = await serve({ dataDir: path.join(work, 'data'), port: 0, host: '127.0.0.1', localAgent: false, tokensFile: file }, started.io);
});
afterAll(async () => {
  await running?.close();
  await cleanup?.();
});

describe('serve --tokens', () => {
  it('starts with the file\'s tokens: names and scopes printed, no admin token created or shown', async () => {
    expect(started.out()).toContain('tokens from');
    expect(started.out()).toContain('ci-hello (apps hello; push,read)');
    expect(started.out()).not.toContain(CI);
    expect(started.out()).not.toContain('admin token');
    expect(started.err()).toBe('');
    expect(await readdir(path.join(work, 'data'))).not.toContain('tokens.json');
  });

  it('an app-scoped push token pushes its app; another app is 403 (exit 4)', async () => {
    const dir = await writeApp(path.join(work, 'hello'), '1.0.0');
    const ok = captureIo();
    expect(await push(new Client(running.url, CI), { source: dir, app: 'hello' }, ok.io), ok.err()).toBe(ExitCode.ok);
    const denied = captureIo();
    expect(await runCli(['push', dir, '--app', 'other', '--server', running.url, '--token', CI], denied.io)).toBe(ExitCode.rejected);
    expect(denied.err()).toContain('DEPLOY_ERR_FORBIDDEN (HTTP 403)');
    const rollback = captureIo();
    expect(await runCli(['rollback', 'hello', '--server', running.url, '--token', CI], rollback.io)).toBe(ExitCode.rejected);
    expect(rollback.err()).toContain('may not activate');
  });

  it('a token given by its sha256 authenticates with the plain token', async () => {
    const status = captureIo();
    expect(await runCli(['status', 'hello', '--server', running.url, '--token', ADMIN], status.io), status.err()).toBe(ExitCode.ok);
    expect(status.out()).toContain('hello: current 1.0.0');
  });
});

describe('serve --tokens refuses a bad file before starting (exit 2, CLI_ERR_TOKENS_FILE)', () => {
  it.each<[string, unknown, string]>([
    ['not JSON', '[{"name":', 'is not JSON'],
    ['not an array', { name: 'a', token: CI }, 'non-empty JSON array'],
    ['an empty array', [], 'non-empty JSON array'],
    ['a typo in a field', [{ name: 'ci', token: CI, app: ['hello'] }], 'unknown field(s) app'],
    ['an unknown action', [{ name: 'ci', token: CI, actions: ['deploy'] }], '"deploy" is not push, activate, read, agent'],
    ['an invalid app name', [{ name: 'ci', token: CI, apps: ['Hello World'] }], 'is not "*" or an app name'],
    ['both token and sha256', [{ name: 'ci', token: CI, sha256: 'a'.repeat(64) }], 'exactly one of token, sha256'],
    ['neither token nor sha256', [{ name: 'ci' }], 'exactly one of token, sha256'],
    ['a short token', [{ name: 'ci', token: 'short' }], 'at least 16 characters'],
    ['a bad sha256', [{ name: 'ci', sha256: 'xyz' }], '64 hex digits'],
    ['a duplicate name', [{ name: 'ci', token: CI }, { name: 'ci', token: ADMIN }], 'used twice'],
    ['one secret twice', [{ name: 'ci', token: CI }, { name: 'other', sha256: createHash('sha256').update(CI).digest('hex').toUpperCase() }], '"other" and "ci" are the same token'],
  ])('%s', async (name, content, message) => {
    const file = await tokensFile(`${name.replaceAll(' ', '-')}.json`, content);
    const io = captureIo();
    const code = await runCli(['serve', '--tokens', file, '--port', '0', '--no-local-agent', '--data-dir', path.join(work, 'never')], io.io, {});
    expect(code).toBe(ExitCode.usage);
    expect(io.err()).toContain('error CLI_ERR_TOKENS_FILE');
    expect(io.err()).toContain(message);
    expect(io.out()).toBe('');
  });

  it('a missing file, named by HOTDEPLOY_TOKENS_FILE', async () => {
    const io = captureIo();
    const env = { HOTDEPLOY_TOKENS_FILE: path.join(work, 'missing.json') };
    expect(await runCli(['serve', '--port', '0', '--no-local-agent', '--data-dir', path.join(work, 'never')], io.io, env)).toBe(ExitCode.usage);
    expect(io.err()).toMatch(/CLI_ERR_TOKENS_FILE.*missing\.json cannot be read \(ENOENT\)/);
  });

  it('deploy/tokens.example.json is a valid file', async () => {
    const { tokens } = await readTokensFile(path.resolve(import.meta.dirname, '..', '..', 'deploy', 'tokens.example.json'));
    expect(tokens.map((t) => [t.name, t.apps ?? '*', t.actions ?? 'all'])).toEqual([
      ['admin', '*', 'all'], ['ci-my-app', ['my-app'], ['push', 'read']], ['dashboard', '*', ['read']],
    ]);
  });

  it('warns when plain tokens are readable by others', async () => {
    const file = await tokensFile('open.json', [{ name: 'ci', token: CI }]);
    await chmod(file, 0o644);
    const io = captureIo();
    const server = await serve({ dataDir: path.join(work, 'data-open'), port: 0, host: '127.0.0.1', localAgent: false, tokensFile: file }, io.io);
    await server.close();
    expect(io.err()).toContain('other users can read it');
  });
});
