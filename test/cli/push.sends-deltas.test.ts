import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../services/cli/client.js';
import { push } from '../../services/cli/commands/push.js';
import { ExitCode } from '../../services/cli/errors.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { ADMIN, captureIo, startTestServer, type TestServer, writeApp } from './helpers.js';
import { cleanEnv, runMain } from './processes.js';

let server: TestServer;
let work: string;
let cleanupWork: () => Promise<void>;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startTestServer();
  ({ dir: work, cleanup: cleanupWork } = await tempDir('hotdeploy-delta-cli-'));
  env = { HOTDEPLOY_CACHE_DIR: path.join(work, 'cache') };
});
afterAll(async () => {
  await server?.close();
  await cleanupWork?.();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- release records are asserted field by field
async function release(app: string, version: string): Promise<any> {
  return (await server.client().request('GET', `/v1/apps/${app}/releases/${version}`)).body;
}

const releaseFile = (app: string, version: string, rel: string) => readFile(path.join(server.dir, 'data/apps', app, 'releases', version, rel), 'utf8');

async function pushDir(dir: string, app: string, version: string, client = server.client()): Promise<{ code: number; err: string; out: string }> {
  const { io, err, out } = captureIo();
  const code = await push(client, { source: dir, app, version }, io, env);
  return { code, err: err(), out: out() };
}

/** A client whose requests pass through a proxy that notes each answer to `GET …/files` (status, and whether it was conditional). */
async function filesProxy(): Promise<{ client: Client; answers: string[]; close: () => Promise<void> }> {
  const answers: string[] = [];
  const proxy = http.createServer((req, res) => {
    const upstream = http.request(new URL(req.url ?? '/', server.url), { method: req.method, headers: req.headers }, (answer) => {
      if (req.url?.endsWith('/files')) answers.push(`${answer.statusCode}${req.headers['if-none-match'] ? ' conditional' : ''}`);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const client = new Client(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, ADMIN);
  return { client, answers, close: () => new Promise((resolve) => proxy.close(() => resolve())) };
}

describe('push of a directory', () => {
  it('sends the full bundle first, then only what changed, what was added and what was removed', async () => {
    const dir = await writeApp(path.join(work, 'app-a'), '1.0.0', 'one');
    const first = await pushDir(dir, 'a', '1');
    expect(first.code, first.err).toBe(ExitCode.ok);
    expect(first.err).toMatch(/pushing a@1 as a full bundle \(3 files/);
    expect((await release('a', '1')).delta).toBeUndefined();

    await writeApp(dir, '1.0.0', 'two');
    const second = await pushDir(dir, 'a', '2');
    expect(second.code, second.err).toBe(ExitCode.ok);
    expect(second.err).toMatch(/pushing a@2 as a delta against 1: 1 changed, 0 removed, \d+ B \(of 3 files\)/);
    expect(await release('a', '2')).toMatchObject({ delta: { base: '1' }, files: 3 });
    expect(await releaseFile('a', '2', 'greeting.js')).toContain('"two"');

    await writeTree(dir, {
      'package.json': { name: 'hello', version: '1.0.0', main: 'index.js', files: ['index.js', 'lib'], hotdeploy: { port: 3000 } },
      'index.js': "const { greeting } = require('./lib/greeting');\nmodule.exports = (req, res) => res.end(greeting());\n",
      'lib/greeting.js': 'exports.greeting = () => "three";\n',
    });
    const third = await pushDir(dir, 'a', '3');
    expect(third.code, third.err).toBe(ExitCode.ok);
    expect(third.err).toMatch(/as a delta against 2: 3 changed, 1 removed/);
    expect(JSON.parse(await releaseFile('a', '3', '.hotdeploy/changes.json'))).toMatchObject({ removed: ['greeting.js'] });
    expect(Object.keys(JSON.parse(await releaseFile('a', '3', '.hotdeploy/files.json')).files).sort())
      .toEqual(['index.js', 'lib/greeting.js', 'package.json']);

    // Nothing changed: a new version is still a delta, of nothing but its (empty) removal list.
    const fourth = await pushDir(dir, 'a', '4');
    expect(fourth.err).toMatch(/as a delta against 3: 0 changed, 0 removed/);
    expect(await release('a', '4')).toMatchObject({ delta: { base: '3' }, manifestSha256: (await release('a', '3')).manifestSha256 });
  });

  it('sees a same-size change whose mtime was put back, and reads only changed files again', async () => {
    const dir = await writeApp(path.join(work, 'app-b'), '1.0.0', 'one');
    expect((await pushDir(dir, 'b', '1')).code).toBe(ExitCode.ok);
    // Same size, same mtime as when it was hashed: only the content differs.
    const file = path.join(dir, 'greeting.js');
    const old = await readFile(file, 'utf8');
    const { mtime } = await import('node:fs/promises').then((fs) => fs.stat(file));
    await writeFile(file, old.replace('one', 'eno'));
    await utimes(file, mtime, mtime);
    const second = await pushDir(dir, 'b', '2');
    expect(second.code, second.err).toBe(ExitCode.ok);
    expect(second.err).toMatch(/1 changed/);
    expect(await releaseFile('b', '2', 'greeting.js')).toContain('"eno"');
    // A file whose mtime is not older than the cache may change within the same tick: it is never trusted.
    const future = new Date(Date.now() + 60_000);
    await utimes(file, future, future);
    await writeFile(file, old.replace('one', 'two'));
    await utimes(file, future, future);
    expect((await pushDir(dir, 'b', '3')).err).toMatch(/1 changed/);
    expect((await pushDir(dir, 'b', '4')).err).toMatch(/0 changed/);
    expect(await releaseFile('b', '4', 'greeting.js')).toContain('"two"');
  });

  it('diffs against the new current release when someone pushed meanwhile, and falls back to the full bundle when the base is gone', async () => {
    const dir = await writeApp(path.join(work, 'app-c'), '1.0.0', 'one');
    const other = await writeApp(path.join(work, 'app-c-other'), '1.0.0', 'other');
    expect((await pushDir(dir, 'c', '1')).code).toBe(ExitCode.ok);
    await writeApp(dir, '1.0.0', 'mine');
    // A real proxy in front of the service: it lets another push land just before the first delta goes through.
    let raced = false;
    const proxy = http.createServer((req, res) => {
      const forward = () => {
        const upstream = http.request(new URL(req.url ?? '/', server.url), { method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        req.pipe(upstream);
      };
      if (req.method === 'PUT' && req.url?.endsWith('/delta') && !raced) {
        raced = true;
        void pushDir(other, 'c', '2').then(forward);
      } else {
        forward();
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { Client } = await import('../../services/cli/client.js');
      const viaProxy = new Client(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, ADMIN);
      const result = await pushDir(dir, 'c', '3', viaProxy);
      expect(result.code, result.err).toBe(ExitCode.ok);
      expect(result.err).toMatch(/1 is no longer current \(DEPLOY_ERR_DELTA_BASE_NOT_CURRENT\)/);
      expect(result.err).toMatch(/pushing c@3 as a delta against 2: 1 changed/);
      expect(await release('c', '3')).toMatchObject({ delta: { base: '2' } });
      expect(await releaseFile('c', '3', 'greeting.js')).toContain('"mine"');
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('keeps the current release\'s file list between pushes: the next exchange is a 304, a damaged list costs one more request', async () => {
    const dir = await writeApp(path.join(work, 'app-f'), '1.0.0', 'one');
    const { client: viaProxy, answers, close } = await filesProxy();
    try {
      expect((await pushDir(dir, 'f', '1', viaProxy)).code).toBe(ExitCode.ok);
      await writeApp(dir, '1.0.0', 'two');
      expect((await pushDir(dir, 'f', '2', viaProxy)).err).toMatch(/as a delta against 1: 1 changed/);
      expect(answers).toEqual(['404', '304 conditional']);

      // The list below the cache's first line is damaged: the 304 cannot be used, the whole list is asked for.
      const cached = path.join(env.HOTDEPLOY_CACHE_DIR as string, 'releases');
      const [name] = (await readdir(cached)).filter((n) => n.includes(encodeURIComponent(viaProxy.server.host)));
      const file = path.join(cached, name as string);
      const [head] = (await readFile(file, 'utf8')).split('\n');
      await writeFile(file, `${head}\n{"files":`);
      answers.length = 0;
      await writeApp(dir, '1.0.0', 'three');
      const third = await pushDir(dir, 'f', '3', viaProxy);
      expect(third.code, third.err).toBe(ExitCode.ok);
      expect(third.err).toMatch(/as a delta against 2: 1 changed/);
      expect(answers).toEqual(['304 conditional', '200']);
      expect(await releaseFile('f', '3', 'greeting.js')).toContain('"three"');
    } finally {
      await close();
    }
  });

  it('after a push the service refused once its upload was sent, or one stored without activation, the next push diffs against the release that is current', async () => {
    const dir = await writeApp(path.join(work, 'app-g'), '1.0.0', 'one');
    const { client: viaProxy, answers, close } = await filesProxy();
    try {
      expect((await pushDir(dir, 'g', '1', viaProxy)).code).toBe(ExitCode.ok);
      // Version 1 again with other files: refused (409) after the delta went, and 1 stays current as it was.
      await writeApp(dir, '1.0.0', 'two');
      await expect(pushDir(dir, 'g', '1', viaProxy)).rejects.toMatchObject({ statusCode: 409, code: 'DEPLOY_ERR_VERSION_CONFLICT' });
      expect(await releaseFile('g', '1', 'greeting.js')).toContain('"one"');

      // The CLI kept the refused files as the current release's: the service answers its own list, not a 304.
      answers.length = 0;
      const next = await pushDir(dir, 'g', '2', viaProxy);
      expect(next.code, next.err).toBe(ExitCode.ok);
      expect(answers).toEqual(['200 conditional']);
      expect(next.err).toMatch(/as a delta against 1: 1 changed/);
      expect(await releaseFile('g', '2', 'greeting.js')).toContain('"two"');

      // Stored without activation, 3 is not current: the next push's exchange is still a 304 for 2.
      await writeApp(dir, '1.0.0', 'three');
      const { io } = captureIo();
      expect(await push(viaProxy, { source: dir, app: 'g', version: '3', activate: false }, io, env)).toBe(ExitCode.ok);
      answers.length = 0;
      await writeApp(dir, '1.0.0', 'four');
      const fourth = await pushDir(dir, 'g', '4', viaProxy);
      expect(fourth.code, fourth.err).toBe(ExitCode.ok);
      expect(answers).toEqual(['304 conditional']);
      expect(fourth.err).toMatch(/as a delta against 2: 1 changed/);
    } finally {
      await close();
    }
  });

  it('sends the full bundle with --npm-pack, and to an app with no current release', async () => {
    const dir = await writeApp(path.join(work, 'app-d'), '1.0.0', 'one');
    const { io, err } = captureIo();
    expect(await push(server.client(), { source: dir, app: 'd', version: '1', activate: false }, io, env)).toBe(ExitCode.ok);
    expect(err()).toMatch(/as a full bundle/);
    const npm = captureIo();
    expect(await push(server.client(), { source: dir, app: 'd', version: '2', npmPack: true }, npm.io, env)).toBe(ExitCode.ok);
    expect(npm.err()).toMatch(/pushing d@2 \(\d+ B, sha256 /);
    expect((await release('d', '2')).delta).toBeUndefined();
    await rm(path.join(dir, 'notes.txt'));
  });

  it('as a real child process: a one-file change goes as a delta and is current when the command exits', async () => {
    const dir = await writeApp(path.join(work, 'app-e'), '1.0.0', 'one');
    const childEnv = cleanEnv({ HOTDEPLOY_SERVER: server.url, HOTDEPLOY_TOKEN: ADMIN, HOTDEPLOY_CACHE_DIR: path.join(work, 'child-cache') });
    const first = await runMain(['push', dir, '--app', 'e', '--version', '1'], childEnv);
    expect(first.code, first.stderr).toBe(0);
    await writeApp(dir, '1.0.0', 'two');
    const second = await runMain(['push', dir, '--app', 'e', '--version', '2'], childEnv);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/pushing e@2 as a delta against 1: 1 changed, 0 removed/);
    expect(second.stdout).toMatch(/deployment \S+ e@2: succeeded/);
    const { body } = await server.client().request<{ current: string }>('GET', '/v1/apps/e');
    expect(body.current).toBe('2');
  });
});
