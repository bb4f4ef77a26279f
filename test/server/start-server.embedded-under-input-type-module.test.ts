import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { putBundle } from '../helpers/child-server.js';
import { TOKENS } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER_INDEX = fileURLToPath(new URL('../../dist/services/server/index.js', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// An embedding program run as `node --input-type=module -e '…'`: the flag is in process.execArgv,
// which worker threads inherit by default, and a worker started from a file dies of it.
const EMBEDDER = `
import { startServer } from ${JSON.stringify(SERVER_INDEX)};
const [dataDir, token] = process.argv.slice(1);
const server = await startServer({ dataDir, port: 0, localAgent: false, logger: { level: 'warn' }, tokens: [{ name: 'admin', token }] });
process.stdout.write(JSON.stringify({ url: server.url }) + '\\n');
`;

it('unpacks uploads when the embedding process runs under node --input-type=module -e', async () => {
  const { dir, cleanup } = await tempDir('hotdeploy-embedded-');
  cleanups.push(cleanup);
  const child = spawn(process.execPath, ['--input-type=module', '-e', EMBEDDER, dir, TOKENS.admin], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the embedded service did not start within 20 s: ${stderr}`)), 20_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`the embedded service exited with ${code}: ${stderr}`)));
  });
  expect(process.execArgv).not.toContain('--input-type=module');

  for (const version of ['1.0.0', '2.0.0']) {
    const res = await putBundle(url, 'demo', version, await makeBundle(appFiles(`demo@${version}`)));
    expect(res.status, `${await res.text()} ${stderr}`).toBe(201);
  }
  const app = await fetch(`${url}/v1/apps/demo`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
  expect(await app.json()).toMatchObject({ current: '2.0.0' });
  expect(stderr).not.toContain('--input-type');
});
