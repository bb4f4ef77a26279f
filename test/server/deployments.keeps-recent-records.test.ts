import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { KEEP_DEPLOYMENT_RECORDS } from '../../services/server/deployments.js';
import { deployVersion, testServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

it(`keeps the newest ${KEEP_DEPLOYMENT_RECORDS} deployment records, and never an unfinished one`, async () => {
  server = await testServer();
  const dir = path.join(server.dataDir, 'deployments');
  // Old records (ids sort before any made today): the first one never finished.
  await Promise.all(Array.from({ length: KEEP_DEPLOYMENT_RECORDS + 5 }, (_, i) => {
    const id = `0000-${String(i).padStart(6, '0')}`;
    return writeFile(path.join(dir, `${id}.json`), JSON.stringify({ id, finishedAt: i === 0 ? null : '2020-01-01T00:00:00.000Z' }));
  }));
  const { deployment } = await deployVersion(server.app, 'demo', '1.0.0');
  // The records' retention runs after the deployment's answer.
  const names = await waitFor(`${KEEP_DEPLOYMENT_RECORDS + 1} records`, async () => {
    const now = await readdir(dir);
    return now.length === KEEP_DEPLOYMENT_RECORDS + 1 && now;
  });
  expect(names).toContain(`${deployment.id}.json`);
  expect(names).toContain('0000-000000.json');
  expect(names).not.toContain('0000-000001.json');
  expect(names).toContain('0000-000006.json');
});
