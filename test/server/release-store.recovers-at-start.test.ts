import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { buildServer } from '../../services/server/build-server.js';
import { deployVersion, get, snapshotApp, TOKEN_CONFIG } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('hotdeploy-recover-')));
afterEach(() => cleanup());

it('removes leftovers at start and records interrupted deployments as failed, keeping everything else', async () => {
  const first = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false });
  await first.ready();
  const deployed = await deployVersion(first, 'demo', '1.0.0');
  await first.close();
  const before = await snapshotApp(dir, 'demo');

  // What a crash can leave: a staging dir, a release folder renamed in but without metadata,
  // metadata whose folder is gone, a temp file of an atomic write, a deployment left running.
  const appDir = path.join(dir, 'apps/demo');
  await mkdir(path.join(dir, 'tmp/demo-2.0.0-abc/raw/package'), { recursive: true });
  await mkdir(path.join(appDir, 'releases/3.0.0'), { recursive: true });
  await writeFile(path.join(appDir, 'releases/3.0.0/index.js'), 'half');
  await writeFile(path.join(appDir, 'meta/4.0.0.json'), '{}');
  await writeFile(path.join(appDir, 'pointers.json.1234.tmp'), '{');
  const running = { ...deployed.deployment, id: 'zzzz-interrupted', status: 'running', finishedAt: null };
  await writeFile(path.join(dir, 'deployments/zzzz-interrupted.json'), JSON.stringify(running));

  const second = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false });
  await second.ready();
  try {
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await snapshotApp(dir, 'demo')).toEqual(before);
    expect((await get(second, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0', releases: [{ version: '1.0.0' }] });
    const interrupted = (await get(second, '/v1/deployments/zzzz-interrupted')).json();
    expect(interrupted).toMatchObject({ status: 'failed', reason: expect.stringMatching(/interrupted/) });
    expect((await get(second, `/v1/deployments/${deployed.deployment.id}`)).json()).toMatchObject({ status: 'succeeded' });
    expect(JSON.parse(await readFile(path.join(appDir, 'meta/1.0.0.json'), 'utf8'))).toMatchObject({ version: '1.0.0', bad: false });
  } finally {
    await second.close();
  }
});
