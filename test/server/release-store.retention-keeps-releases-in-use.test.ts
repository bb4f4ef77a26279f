import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { HostAgent, WorkerState } from '../../agent/messages.js';
import { deployVersion, get, testServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

/** A host agent whose one worker says which release directories its live code came from. */
function agentUsing(releases: () => Promise<string[] | undefined>): HostAgent {
  return {
    host: 'h1',
    activate: async () => ({ status: 'succeeded', path: 'hot', workers: [] }),
    workers: async (): Promise<WorkerState[]> => {
      const dirs = await releases();
      return [{ host: 'h1', pmId: 0, pid: 1, version: null, status: 'online', ...(dirs ? { releases: dirs } : {}) }];
    },
    close: async () => undefined,
  };
}

/** The release folders on disk, once the retention that follows the last deployment's answer is done (the listing waits for it). */
const stored = async () => {
  expect((await get(server.app, '/v1/apps/demo/releases')).statusCode).toBe(200);
  return (await readdir(path.join(server.dataDir, 'apps/demo/releases'))).sort();
};

it('keeps a release the workers still run code from, past `keep`', async () => {
  let firstDir = '';
  let asked = 0;
  server = await testServer({ keep: 2, agents: [agentUsing(async () => { asked += 1; return firstDir ? [firstDir] : []; })] });
  await deployVersion(server.app, 'demo', '1.0.0');
  firstDir = await realpath(path.join(server.dataDir, 'apps/demo/releases/1.0.0'));
  for (const v of ['2.0.0', '3.0.0', '4.0.0']) await deployVersion(server.app, 'demo', v);
  expect(await stored()).toEqual(['1.0.0', '3.0.0', '4.0.0']);
  // Asked only when a release was over `keep` (after 3.0.0 and 4.0.0).
  expect(asked).toBe(2);
  // Once no worker uses it any more, the next round removes it.
  firstDir = '';
  await deployVersion(server.app, 'demo', '5.0.0');
  expect(await stored()).toEqual(['4.0.0', '5.0.0']);
});

it('prunes nothing while a running worker does not say which releases it uses', async () => {
  server = await testServer({ keep: 2, agents: [agentUsing(async () => undefined)] });
  for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) await deployVersion(server.app, 'demo', v);
  expect(await stored()).toEqual(['1.0.0', '2.0.0', '3.0.0', '4.0.0']);
});
