import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startServer } from '../../services/server/start-server.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('hotdeploy-start-')));
afterEach(() => cleanup());

it('creates an admin token on first start only, stores its hash with mode 0600, and it works', async () => {
  const first = await startServer({ dataDir: dir, port: 0, localAgent: false, logger: false });
  try {
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(first.adminToken).toMatch(/^hd_[A-Za-z0-9_-]{43}$/);
    const file = path.join(dir, 'tokens.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = await readFile(file, 'utf8');
    expect(stored).not.toContain(first.adminToken);
    expect(JSON.parse(stored)).toEqual([{ name: 'admin', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), apps: '*', actions: ['push', 'activate', 'read', 'agent'] }]);

    const res = await fetch(`${first.url}/v1/apps/demo/releases/1.0.0`, {
      method: 'PUT', body: await makeBundle(appFiles('v1')),
      headers: { authorization: `Bearer ${first.adminToken}`, 'content-type': 'application/gzip' },
    });
    expect(res.status).toBe(201);
    expect((await fetch(`${first.url}/v1/apps`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  } finally {
    await first.close();
  }
  const second = await startServer({ dataDir: dir, port: 0, localAgent: false, logger: false });
  try {
    expect(second.adminToken).toBeUndefined();
    const apps = await fetch(`${second.url}/v1/apps`, { headers: { authorization: `Bearer ${first.adminToken}` } });
    expect(await apps.json()).toMatchObject({ apps: [{ name: 'demo', current: '1.0.0' }] });
  } finally {
    await second.close();
  }
});
