import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { ActivationRequest, ActivationResult } from '../../agent/messages.js';
import { buildServer } from '../../services/server/build-server.js';
import { IntentLog, type Intent } from '../../services/server/intent-record.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { makeBundle, appFiles } from '../helpers/bundles.js';
import { deployVersion, get, TOKEN_CONFIG, upload } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

// The intent is on disk before any host is asked; a stop of the service between the hosts' answer
// and the records (or before the answer) is finished at the next start from what the intent says.

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('hotdeploy-intent-')));
afterEach(() => cleanup());

/** A server over `dir`, run through `use`, then closed. */
async function withServer(use: (app: ReturnType<typeof buildServer>) => Promise<void>, agents = [new ScriptedAgent('h1')]): Promise<void> {
  const app = buildServer({ dataDir: dir, tokens: TOKEN_CONFIG, logger: false, agents });
  await app.ready();
  try {
    await use(app);
  } finally {
    await app.close();
  }
}

async function auditOutcomes(deploymentId: string): Promise<string[]> {
  const lines = (await readFile(path.join(dir, 'audit.log'), 'utf8')).split('\n').filter(Boolean);
  return lines.map((l) => JSON.parse(l) as { deploymentId?: string; outcome: string }).filter((e) => e.deploymentId === deploymentId).map((e) => e.outcome);
}

/** 1.0.0 current, 2.0.0 stored; returns 2.0.0's sha256. */
async function twoReleases(): Promise<string> {
  let sha256 = '';
  await withServer(async (app) => {
    await deployVersion(app, 'demo', '1.0.0');
    const res = await upload(app, 'demo', '2.0.0', await makeBundle(appFiles('demo@2.0.0')), { query: '?activate=false' });
    sha256 = (res.json() as { release: { sha256: string } }).release.sha256;
  });
  return sha256;
}

function intentFor(id: string, sha256: string): Intent {
  const now = new Date().toISOString();
  return { deploymentId: id, app: 'demo', version: '2.0.0', kind: 'activate', by: 'admin', sha256, createdAt: now, startedAt: now,
    before: { current: '1.0.0', previous: null }, after: { current: '2.0.0', previous: '1.0.0' } };
}

it('writes the intent before asking any host, and removes it once the outcome is recorded', async () => {
  const seen: boolean[] = [];
  class Watching extends ScriptedAgent {
    override activate(request: ActivationRequest): Promise<ActivationResult> {
      seen.push(existsSync(path.join(dir, 'intent', `${request.app}.json`)));
      return super.activate(request);
    }
  }
  await withServer(async (app) => {
    await deployVersion(app, 'demo', '1.0.0');
    await deployVersion(app, 'demo', '2.0.0');
  }, [new Watching('h1'), new Watching('h2')]);
  expect(seen).toEqual([true, true, true, true]);
  expect(existsSync(path.join(dir, 'intent', 'demo.json'))).toBe(false);
  expect(existsSync(path.join(dir, 'intent', 'reserve'))).toBe(true);
});

it('a stop after the hosts answered: the next start records the outcome as it happened, audited once', async () => {
  const sha256 = await twoReleases();
  // What a SIGKILL right after the outcome went into the intent leaves: no record, pointers unmoved.
  const log = new IntentLog(dir);
  const intent = intentFor('zzzz-decided', sha256);
  await log.begin(intent);
  await log.decide(intent, { status: 'succeeded', finishedAt: new Date().toISOString(), hosts: [{ host: 'h1', status: 'succeeded', path: 'hot' }] });

  for (let start = 0; start < 2; start++) {
    await withServer(async (app) => {
      expect((await get(app, '/v1/apps/demo')).json()).toMatchObject({ current: '2.0.0', previous: '1.0.0' });
      expect((await get(app, '/v1/deployments/zzzz-decided')).json()).toMatchObject({
        status: 'succeeded', version: '2.0.0', kind: 'activate', hosts: [{ host: 'h1', status: 'succeeded', path: 'hot' }],
      });
    });
    expect(await auditOutcomes('zzzz-decided')).toEqual(['succeeded']);
    expect(existsSync(path.join(dir, 'intent', 'demo.json'))).toBe(false);
  }
});

it('a stop while the hosts worked: the deployment is recorded as interrupted and the pointers stay', async () => {
  const sha256 = await twoReleases();
  await new IntentLog(dir).begin(intentFor('zzzz-undecided', sha256));
  await withServer(async (app) => {
    expect((await get(app, '/v1/apps/demo')).json()).toMatchObject({ current: '1.0.0' });
    expect((await get(app, '/v1/deployments/zzzz-undecided')).json()).toMatchObject({
      status: 'failed', version: '2.0.0', reason: expect.stringMatching(/^interrupted: the server stopped before it finished/),
    });
    // Another deployment of the app is not held up by it.
    const res = await app.inject({ method: 'POST', url: '/v1/apps/demo/activate', headers: { authorization: `Bearer ${TOKEN_CONFIG[0]!.token}` }, payload: { version: '2.0.0' } });
    expect(res.json()).toMatchObject({ deployment: { status: 'succeeded' } });
  });
});
