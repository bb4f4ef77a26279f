import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { buildServer } from '../../services/server/build-server.js';
import { deployVersion, get, TOKEN_CONFIG } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

// The `queued` and `running` records are written without an fsync (they lie between the
// upload and the workers). A killed process loses neither; a power loss can leave one as it was, or
// empty, or cut short, and the next start must cope with each.

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('hotdeploy-power-loss-')));
afterEach(() => cleanup());

it('records a deployment left queued as failed, and moves empty or torn records aside', async () => {
  const first = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false });
  await first.ready();
  const deployed = await deployVersion(first, 'demo', '1.0.0');
  await first.close();

  const records = path.join(dir, 'deployments');
  const queued = { ...deployed.deployment, id: 'zzzz-queued', status: 'queued', startedAt: null, finishedAt: null, workers: [], hosts: [] };
  await writeFile(path.join(records, 'zzzz-queued.json'), JSON.stringify(queued));
  await writeFile(path.join(records, 'zzzz-empty.json'), '');
  await writeFile(path.join(records, 'zzzz-torn.json'), JSON.stringify(queued).slice(0, 40));
  await writeFile(path.join(records, 'zzzz-queued.json.0a1b2c3d4e5f.tmp'), '{"id":');

  const second = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false });
  await second.ready();
  try {
    expect((await get(second, '/v1/deployments/zzzz-queued')).json()).toMatchObject({ status: 'failed', reason: expect.stringMatching(/interrupted/) });
    expect((await get(second, '/v1/deployments/zzzz-empty')).json()).toMatchObject({ statusCode: 404, code: 'DEPLOY_ERR_DEPLOYMENT_NOT_FOUND' });
    expect((await get(second, `/v1/deployments/${deployed.deployment.id}`)).json()).toMatchObject({ status: 'succeeded' });
    expect((await readdir(records)).sort()).toEqual([`${deployed.deployment.id}.json`, 'zzzz-empty.json.unreadable', 'zzzz-queued.json', 'zzzz-torn.json.unreadable']);
    // The app still deploys, and the deployments list without the unreadable ones.
    const next = await deployVersion(second, 'demo', '2.0.0');
    const listed = (await get(second, '/v1/deployments?app=demo')).json() as { deployments: { id: string; status: string }[] };
    expect(listed.deployments.map((d) => [d.id, d.status])).toEqual([
      ['zzzz-queued', 'failed'], [next.deployment.id, 'succeeded'], [deployed.deployment.id, 'succeeded'],
    ]);
  } finally {
    await second.close();
  }
});
