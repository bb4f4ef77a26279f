import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { create } from 'tar';
import { deployment, startHotdeploy, HOTDEPLOY_TOKEN, type DeploymentBody, type Hotdeploy } from '../helpers/hotdeploy.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { installedCopy, nextRelease, setHotdeploy } from './install.js';

/**
 * Generated apps pushed to a real service with its PM2 agent, as bundles carrying their installed
 * node_modules (as `npm pack` of a directory with `bundleDependencies` would send them).
 */
// A first run installs each app's dependencies from the registry (later ones from npm's cache).
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

let hd: Hotdeploy;
let root: string;
let cleanup: () => Promise<void>;
// The PM2 daemon the agent starts (at its first deployment) inherits this process's environment,
// and so do its workers: not the test runner's variables, under which @fastify/autoload imports
// routes as ES modules. Put back once the daemon is gone.
const runner = Object.entries(process.env).filter(([key]) => key.startsWith('VITEST'));
beforeAll(async () => {
  for (const [key] of runner) delete process.env[key];
  hd = await startHotdeploy();
  ({ dir: root, cleanup } = await tempDir('hotdeploy-generated-pm2-'));
});
afterAll(async () => {
  await hd?.close();
  await cleanup?.();
  for (const [key, value] of runner) process.env[key] = value;
});

/** A .tgz of `dir` under `package/`, as npm pack lays it out, node_modules included. */
async function bundle(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = create({ gzip: true, cwd: dir, prefix: 'package', portable: true }, ['.']);
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function push(app: string, version: string, dir: string): Promise<DeploymentBody> {
  const res = await fetch(`${hd.url}/v1/apps/${app}/releases/${version}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}`, 'content-type': 'application/gzip' },
    body: await bundle(dir),
  });
  const body = (await res.json()) as { deployment: DeploymentBody };
  if (res.status !== 201) throw new Error(`push ${app}@${version}: ${res.status} ${JSON.stringify(body)}`);
  return deployment(hd, body.deployment.id);
}

async function text(port: number, pathname: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) });
  return `${res.status} ${await res.text()}`;
}

describe('a fastify-cli app under PM2', () => {
  let port: number;
  let v1: string;

  it('starts with nothing but a port (the start script says how to host it)', async () => {
    port = await freePort();
    v1 = await installedCopy('fastify-app', path.join(root, 'fastify', '1'));
    await setHotdeploy(v1, { port });
    const started = await push('fastify-app', '1', v1);
    expect(started.status, started.reason).toBe('succeeded');
    expect(started.workers.map((w) => w.outcome)).toEqual(['started', 'started']);
    expect(await text(port, '/')).toBe('200 {"root":true}');
    expect(await text(port, '/example')).toBe('200 this is an example');
  });

  it('takes a route change hot in every worker', async () => {
    const v2 = await nextRelease(v1, path.join(root, 'fastify', '2'), 'routes/example/index.js', (s) => s.replace("'this is an example'", "'an example, anew'"));
    const hot = await push('fastify-app', '2', v2);
    expect(hot.status, hot.reason).toBe('succeeded');
    expect(hot.workers.map((w) => [w.outcome, w.update?.outdated])).toEqual([['hot', ['routes/example/index.js']], ['hot', ['routes/example/index.js']]]);
    expect(await text(port, '/example')).toBe('200 an example, anew');
  });

  it('rolls back a syntax error in a route with a reason that says where', async () => {
    const v3 = await nextRelease(v1, path.join(root, 'fastify', '3'), 'routes/example/index.js', (s) => s.replace("return 'this is an example'", "return 'broken' +"));
    const failed = await push('fastify-app', '3', v3);
    expect(failed.status).toBe('rolled-back');
    expect(failed.reason).toContain('routes/example/index.js:');
    expect(failed.reason).toMatch(/routes\/example\/index\.js:\d+:\d+: SyntaxError: /);
    expect(await text(port, '/example')).toBe('200 an example, anew');
  });

  // Hosted as a `(req, res)` handler, the plugin throws on `fastify.register` at every request: an empty 500.
  it('rolls back the plugin mis-hosted as a request handler: the health probe quotes the 500, the old release serves', async () => {
    const before = await workerPids('fastify-app');
    const v4 = await nextRelease(v1, path.join(root, 'fastify', '4'));
    await setHotdeploy(v4, { port, export: 'handler' });
    const refused = await push('fastify-app', '4', v4);
    expect(refused.status, refused.reason).toBe('rolled-back');
    expect(refused.reason).toMatch(/worker \d+ failed the health probe: GET \/ answered 500 with an empty body/);
    expect(refused.workers.map((w) => w.version)).toEqual(['2', '2']);
    expect(await text(port, '/example')).toBe('200 an example, anew');
    // The update swapped the workers and the probe swapped them back: the same processes serve.
    expect(await workerPids('fastify-app')).toEqual(before);
  });

  it('fails a first start of the plugin mis-hosted as a request handler, and leaves nothing running', async () => {
    const misfitPort = await freePort();
    const dir = await nextRelease(v1, path.join(root, 'fastify', 'misfit'));
    await setHotdeploy(dir, { port: misfitPort, export: 'handler' });
    const failed = await push('fastify-misfit', '1', dir);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/worker \d+ failed the health probe: GET \/ answered 500 with an empty body/);
    await expect(fetch(`http://127.0.0.1:${misfitPort}/`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  });
});

/** The pids of `app`'s workers, as the service's status reports them. */
async function workerPids(app: string): Promise<number[]> {
  const res = await fetch(`${hd.url}/v1/apps/${app}`, { headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}` } });
  const body = (await res.json()) as { workers: { pid: number | null }[] };
  return body.workers.map((w) => w.pid ?? 0).sort();
}

describe('an express-generator app under PM2', () => {
  it('starts with { "entry": "app.js", "port": N } and serves views and static files', async () => {
    const port = await freePort();
    const dir = await installedCopy('express-app', path.join(root, 'express', '1'), { entry: 'app.js', port });
    const started = await push('express-app', '1', dir);
    expect(started.status, started.reason).toBe('succeeded');
    expect(await text(port, '/')).toMatch(/^200 [\s\S]*Welcome to Express/);
    expect(await text(port, '/stylesheets/style.css')).toMatch(/^200 body/);
  });
});
