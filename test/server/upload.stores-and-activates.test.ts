import { createHash } from 'node:crypto';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appFiles, makeBundle, rawApp, rawTgz } from '../helpers/bundles.js';
import { get, testServer, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeEach(async () => { server = await testServer(); });
afterEach(() => server.close());

describe('PUT /v1/apps/:app/releases/:version', () => {
  it('stores an npm-pack style bundle, strips package/, and activates it', async () => {
    const bundle = await makeBundle(appFiles('v1'));
    const sha256 = createHash('sha256').update(bundle).digest('hex');
    const res = await upload(server.app, 'demo', '1.0.0', bundle, { headers: { 'x-bundle-sha256': sha256 } });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.created).toBe(true);
    expect(body.release).toMatchObject({ app: 'demo', version: '1.0.0', sha256, files: 3, bundleBytes: bundle.length, bad: false });
    expect(body.release.manifest).toMatchObject({ entry: 'index.js', mode: 'handler' });
    expect(body.deployment).toMatchObject({ app: 'demo', version: '1.0.0', kind: 'push', status: 'succeeded', workers: [], from: null });
    expect(body.deployment.reason).toMatch(/no host agent/);

    const releaseDir = path.join(server.dataDir, 'apps/demo/releases/1.0.0');
    expect((await readdir(releaseDir)).sort()).toEqual(['.hotdeploy', 'index.js', 'lib', 'package.json']);
    expect(await readFile(path.join(releaseDir, 'index.js'), 'utf8')).toContain('"v1"');
    const hashes = JSON.parse(await readFile(path.join(releaseDir, '.hotdeploy/files.json'), 'utf8'));
    expect(hashes).toEqual({
      version: 1, algorithm: 'sha256',
      files: {
        'index.js': createHash('sha256').update(await readFile(path.join(releaseDir, 'index.js'))).digest('hex'),
        'lib/util.js': expect.stringMatching(/^[0-9a-f]{64}$/),
        'package.json': expect.stringMatching(/^[0-9a-f]{64}$/),
      },
      links: [],
    });
    expect(await readFile(path.join(server.dataDir, `apps/demo/bundles/${sha256}.tgz`))).toEqual(bundle);
    expect(await readlink(path.join(server.dataDir, 'apps/demo/current'))).toBe('releases/1.0.0');
    expect(await readdir(path.join(server.dataDir, 'tmp'))).toEqual([]);

    const status = await get(server.app, '/v1/apps/demo');
    expect(status.json()).toMatchObject({ name: 'demo', current: '1.0.0', previous: null, workers: [] });
    const dep = await get(server.app, `/v1/deployments/${body.deployment.id}`);
    expect(dep.json()).toMatchObject({ id: body.deployment.id, status: 'succeeded' });
  });

  it('moves current to previous on the next release', async () => {
    expect((await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')))).statusCode).toBe(201);
    const res = await upload(server.app, 'demo', '1.1.0', await makeBundle(appFiles('v2'), ''));
    expect(res.statusCode).toBe(201);
    expect(res.json().deployment).toMatchObject({ from: '1.0.0', status: 'succeeded' });
    expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.1.0', previous: '1.0.0' });
    const releases = (await get(server.app, '/v1/apps/demo/releases')).json();
    expect(releases.releases.map((r: { version: string }) => r.version)).toEqual(['1.1.0', '1.0.0']);
  });

  it('drops setuid/setgid/sticky and group/other write bits, keeps exec bits', async () => {
    const body = rawTgz([...rawApp('v1'), { path: 'bin/run', body: '#!/bin/sh\n', mode: 0o6777 }, { path: 'lib/open.js', body: '', mode: 0o1666 }]);
    expect((await upload(server.app, 'demo', '1.0.0', body)).statusCode).toBe(201);
    const mode = async (rel: string) => (await stat(path.join(server.dataDir, 'apps/demo/releases/1.0.0', rel))).mode & 0o7777;
    expect(await mode('bin/run')).toBe(0o755);
    expect(await mode('lib/open.js')).toBe(0o644);
  });

  it('with ?activate=false only stores it', async () => {
    const res = await upload(server.app, 'demo', '1.0.0', await makeBundle(appFiles('v1')), { query: '?activate=false' });
    expect(res.statusCode).toBe(201);
    expect(res.json().deployment).toBeNull();
    expect((await get(server.app, '/v1/apps/demo')).json()).toMatchObject({ current: null });
  });
});
