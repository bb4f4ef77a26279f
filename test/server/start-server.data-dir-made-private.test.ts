import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { buildServer } from '../../services/server/build-server.js';
import { startServer, type RunningServer } from '../../services/server/start-server.js';
import { TOKEN_CONFIG, TOKENS } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openDataDir(): Promise<string> {
  const { dir, cleanup } = await tempDir('hotdeploy-datadir-');
  cleanups.push(cleanup);
  // As `mkdir` under the usual umask makes it: readable and enterable by every user.
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir, { mode: 0o755 });
  expect((await stat(dataDir)).mode & 0o777).toBe(0o755);
  return dataDir;
}

it('makes a data directory created beforehand as 0755 private (0700) when the service starts, and says so', async () => {
  const dataDir = await openDataDir();
  const lines: { msg?: string; level?: number }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg?: string });
      callback();
    },
  });
  const running: RunningServer = await startServer({ dataDir, port: 0, localAgent: false, tokens: TOKEN_CONFIG, logger: { level: 'warn', stream } });
  cleanups.push(() => running.close());
  expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
  expect(lines.some((l) => l.msg?.includes('data directory was open to other users'))).toBe(true);
  // The service works as before.
  const res = await fetch(`${running.url}/v1/apps`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(res.status).toBe(200);
});

it('an embedded service (buildServer without startServer) makes it private too', async () => {
  const dataDir = await openDataDir();
  const app = buildServer({ dataDir, tokens: TOKEN_CONFIG, logger: false });
  cleanups.push(() => app.close());
  await app.ready();
  expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
});
