import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hostApp, readManifest } from '../../agent/index.js';
import { probe } from '../../agent/runtime/probe.js';
import { serve } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../helpers/ports.js';
import { startWorker } from '../worker/worker-process.js';
import { installedCopy, nextRelease, setHotdeploy } from './install.js';

/**
 * Apps as the official generators make them (test/fixtures/generated), their dependencies
 * installed with `npm ci`, hosted in process with the settings the README's recipes give.
 */
// A first run installs each app's dependencies from the registry (later ones from npm's cache).
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir: root, cleanup } = await tempDir('hotdeploy-generated-')));
afterAll(() => cleanup());

const PROBE = { path: '/', timeoutMs: 5_000 };


describe('express-generator 4', () => {
  it('runs app.js with { "entry": "app.js", "port": 3000 }: views, static files and express-session', async () => {
    const dir = await installedCopy('express-app', path.join(root, 'express', 'v1'), { entry: 'app.js', port: 3000 });
    const app = await hostApp({ name: 'express', dir });
    const server = await serve(app.handler);
    try {
      expect(await server.get('/')).toMatch(/^200 [\s\S]*Welcome to Express/);
      expect(await server.get('/stylesheets/style.css')).toMatch(/^200 body \{/);
      const first = await fetch(`${server.url}/visits`);
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
      expect(await first.text()).toBe('visits 1');
      expect(await (await fetch(`${server.url}/visits`, { headers: { cookie } })).text()).toBe('visits 2');

      // A route change without an accept reaches app.js: the entry is evaluated again, and with it
      // express-session's MemoryStore (the README's "what state survives").
      const v2 = await nextRelease(dir, path.join(root, 'express', 'v2'), 'routes/users.js', (s) => s.replace('respond with a resource', 'the users, anew'));
      expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['routes/users.js'], accepted: ['app.js'] });
      expect(await server.get('/users')).toBe('200 the users, anew');
      expect(await (await fetch(`${server.url}/visits`, { headers: { cookie } })).text()).toBe('visits 1');
    } finally {
      await server.close();
      await app.close();
    }
  });
});

/** The README's accept pattern for express-generator's app.js: routes mounted through closures. */
function acceptRoutes(appJs: string): string {
  return appJs
    .replace("app.use('/', indexRouter);\napp.use('/users', usersRouter);", [
      "app.use('/', (req, res, next) => indexRouter(req, res, next));",
      "app.use('/users', (req, res, next) => usersRouter(req, res, next));",
      'if (module.hot) {',
      "  module.hot.accept(['./routes/index', './routes/users'], () => {",
      "    indexRouter = require('./routes/index');",
      "    usersRouter = require('./routes/users');",
      '  });',
      '}',
    ].join('\n'));
}

describe('express-generator 4 with the accept pattern', () => {
  it('keeps express-session\'s sessions across a route change: app.js is not evaluated again', async () => {
    const installed = await installedCopy('express-app', path.join(root, 'express-accept', 'v0'), { entry: 'app.js', port: 3000 });
    const dir = await nextRelease(installed, path.join(root, 'express-accept', 'v1'), 'app.js', acceptRoutes);
    const app = await hostApp({ name: 'express-accept', dir });
    const server = await serve(app.handler);
    try {
      const first = await fetch(`${server.url}/visits`);
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
      expect(await first.text()).toBe('visits 1');
      const v2 = await nextRelease(dir, path.join(root, 'express-accept', 'v2'), 'routes/index.js', (s) => s.replace("'visits ' +", "'visits, anew ' +"));
      expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['routes/index.js'], disposed: ['routes/index.js'], accepted: ['app.js'] });
      expect(await (await fetch(`${server.url}/visits`, { headers: { cookie } })).text()).toBe('visits, anew 2');
    } finally {
      await server.close();
      await app.close();
    }
  });
});

describe('koa-generator (koa2, @koa/router, koa-views)', () => {
  it('hosts the Koa application app.js exports through callback()', async () => {
    const dir = await installedCopy('koa-app', path.join(root, 'koa', 'v1'), { entry: 'app.js', port: 3000 });
    const app = await hostApp({ name: 'koa', dir });
    try {
      expect(await probe(app.handler, { ...PROBE, path: '/string' })).toMatchObject({ ok: true, status: 200, bodyStart: 'koa2 string' });
      expect((await probe(app.handler, PROBE)).bodyStart).toContain('<title>Hello Koa 2!</title>');
      const v2 = await nextRelease(dir, path.join(root, 'koa', 'v2'), 'routes/index.js', (s) => s.replace("'koa2 string'", "'koa2, anew'"));
      expect(await app.update(v2)).toMatchObject({ outcome: 'hot', outdated: ['routes/index.js'] });
      expect((await probe(app.handler, { ...PROBE, path: '/string' })).bodyStart).toBe('koa2, anew');
    } finally {
      await app.close();
    }
  });
});

describe('fastify-cli generate', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await installedCopy('fastify-app', path.join(root, 'fastify', 'v1'));
  });

  it('is told a fastify-cli app by its `fastify start` script, with no settings at all', async () => {
    expect(await readManifest(dir)).toMatchObject({
      entry: 'app.js', export: 'fastify-plugin', port: 3000,
      fastify: { file: 'app.js', logLevel: 'info', pluginOptions: {}, ignored: [] },
    });
  });

  it('hosts the plugin as `fastify start` does: autoloaded plugins and routes, ready before it serves', async () => {
    const app = await hostApp({ name: 'fastify', dir });
    try {
      expect(await probe(app.handler, PROBE)).toMatchObject({ ok: true, status: 200, bodyStart: '{"root":true}' });
      expect((await probe(app.handler, { ...PROBE, path: '/example' })).bodyStart).toBe('this is an example');
    } finally {
      await app.close();
    }
  });

  it('takes a route change hot in a worker, on a new fastify instance', async () => {
    // In a real worker: under a test runner @fastify/autoload imports routes as ES modules.
    const port = await freePort();
    const v1 = await nextRelease(dir, path.join(root, 'fastify', 'w1'));
    await setHotdeploy(v1, { port });
    const worker = await startWorker({ dataDir: path.join(root, 'fastify', 'data'), app: 'fastify', version: '1', releaseDir: v1 });
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/example`)).text()).toBe('this is an example');
      const v2 = await nextRelease(v1, path.join(root, 'fastify', 'w2'), 'routes/example/index.js', (s) => s.replace("'this is an example'", "'an example, anew'"));
      const updated = await worker.request({ kind: 'update', version: '2', releaseDir: v2, probe: PROBE });
      expect(updated).toMatchObject({ kind: 'updated', result: { outcome: 'hot', outdated: ['routes/example/index.js'], accepted: ['app.js'] }, probe: { ok: true, bodyStart: '{"root":true}' } });
      expect(await (await fetch(`http://127.0.0.1:${port}/example`)).text()).toBe('an example, anew');
    } finally {
      await worker.close();
    }
  });

  it('mis-hosted as a (req, res) handler (hotdeploy.export "handler"), it boots and every request is a 500: the probe says so', async () => {
    const misDir = await nextRelease(dir, path.join(root, 'fastify', 'mis'));
    await setHotdeploy(misDir, { export: 'handler' });
    const app = await hostApp({ name: 'fastify-mis', dir: misDir });
    try {
      expect(await probe(app.handler, PROBE)).toMatchObject({ ok: false, status: 500, bodyStart: '' });
    } finally {
      await app.close();
    }
  });
});

describe('@nestjs/cli new', () => {
  it('serves through a factory export (the handler-mode recipe)', async () => {
    const dir = await installedCopy('nest-app', path.join(root, 'nest', 'v1'), { entry: 'dist/hot.js', port: 3000 });
    await writeFile(path.join(dir, 'dist', 'hot.js'), [
      "import { NestFactory } from '@nestjs/core';",
      "import { AppModule } from './app.module.js';",
      '// hotdeploy hosts what this returns: init() registers the routes, the worker owns the server.',
      'export default async function () {',
      '  return NestFactory.create(AppModule, { logger: false });',
      '}',
      '',
    ].join('\n'));
    const app = await hostApp({ name: 'nest', dir });
    try {
      expect(await probe(app.handler, PROBE)).toMatchObject({ ok: true, status: 200, bodyStart: 'Hello World!' });
    } finally {
      await app.close();
    }
  });

  it('runs as generated in process mode: dist/main.js listens on PORT itself', async () => {
    const port = await freePort();
    const dir = await installedCopy('nest-app', path.join(root, 'nest', 'p1'), { mode: 'process', entry: 'dist/main.js', env: { PORT: String(port) } });
    const worker = await startWorker({ dataDir: path.join(root, 'nest', 'data'), app: 'nest', version: '1', releaseDir: dir, env: { PORT: String(port) } });
    try {
      expect(worker.messages.map((m) => m.kind)).toEqual(['booted']);
      const body = await waitFor('the NestJS app to listen', async () => (await fetch(`http://127.0.0.1:${port}/`)).text(), 20_000);
      expect(body).toBe('Hello World!');
    } finally {
      await worker.close();
    }
  });
});
