import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { cleanupStack, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';
import { startWorker } from './worker-process.js';

const t = cleanupStack();
afterEach(t.run);

async function boot(files: Record<string, string | object>, name = 'v1'): Promise<{ worker: Awaited<ReturnType<typeof startWorker>>; root: string }> {
  const root = await t.root();
  const port = await freePort();
  const dir = await writeRelease(root, { 'package.json': { name: 'e', version: '1.0.0', main: 'index.js', hotdeploy: { port } }, ...files }, { name });
  return { worker: t.defer(await startWorker({ dataDir: path.join(root, 'data'), app: 'e', version: name, releaseDir: dir })), root };
}

it('a syntax error at start: the reason starts with file:line:column and the message, the stack goes to stderr', async () => {
  const { worker } = await boot({ 'index.js': "require('./routes/index');\nmodule.exports = (req, res) => res.end();\n", 'routes/index.js': "const x = 1;\nconsole.log('x'\n" });
  const failed = await worker.next((m) => m.kind === 'boot-failed');
  expect(failed).toMatchObject({ kind: 'boot-failed', error: { message: 'routes/index.js:2:13: SyntaxError: missing ) after argument list' } });
  await worker.close();
  expect(worker.stderr()).toContain('routes/index.js:2:13: SyntaxError: missing ) after argument list');
  expect(worker.stderr()).toMatch(/routes\/index\.js:2\n/);
});

it('an export of no supported shape fails the start, saying what was found and what is expected', async () => {
  const { worker } = await boot({ 'index.js': 'module.exports = function setup(app) { return app; };\n' });
  const failed = await worker.next((m) => m.kind === 'boot-failed');
  expect(failed).toMatchObject({ error: { code: 'HOT_ERR_HANDLER', message: expect.stringContaining('index.js exports a function of 1 parameter(s) (setup); expected a (req, res) handler') } });
});

it('an update whose module throws: a one-line reason with where, and the stack on stderr', async () => {
  const { worker, root } = await boot({ 'index.js': "const m = require('./m');\nmodule.exports = (req, res) => res.end(m);\n", 'm.js': "module.exports = 'one';" });
  const v2 = await writeRelease(root, { 'package.json': { name: 'e', version: '1.0.0', main: 'index.js', hotdeploy: { port: 1 } }, 'index.js': "const m = require('./m');\nmodule.exports = (req, res) => res.end(m);\n", 'm.js': "const cfg = undefined;\nmodule.exports = cfg.name;\n" }, { name: 'v2' });
  const updated = await worker.request({ kind: 'update', version: 'v2', releaseDir: v2 });
  expect(updated).toMatchObject({ kind: 'updated', result: { outcome: 'failed', error: { message: "m.js:2:22: TypeError: Cannot read properties of undefined (reading 'name')" } } });
  await waitFor('the stack on stderr', () => worker.stderr().includes('the update to v2 failed'), 5_000);
  expect(worker.stderr()).toMatch(/at Object\.<anonymous> \(.*\/v2\/m\.js:2:22\)/);
});
