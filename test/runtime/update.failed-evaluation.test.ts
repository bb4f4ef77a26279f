import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const idx = "const msg = require('./msg');\nmodule.exports = (req, res) => res.end(msg);\n";

it('reports failed with the error and status fail when new code throws, keeps serving the old handler, and recovers on the next update', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': idx, 'msg.js': "module.exports = 'one';" });
  const v2 = await writeRelease(root, { 'index.js': idx, 'msg.js': "throw new Error('syntax is fine, logic is not');" });
  const v3 = await writeRelease(root, { 'index.js': idx, 'msg.js': "module.exports = 'three';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));

  const failed = await app.update(v2);
  expect(failed).toMatchObject({ outcome: 'failed', disposed: ['index.js', 'msg.js'], accepted: [] });
  // The reason starts where in the release the error comes from.
  expect(failed.error?.message).toBe('msg.js:1:7: syntax is fine, logic is not');
  expect(failed.error?.stack).toContain('msg.js');
  expect(app.status()).toBe('fail');
  expect(await server.get()).toBe('200 one');

  const fixed = await app.update(v3);
  expect(fixed.outcome).toBe('hot');
  expect(app.status()).toBe('idle');
  expect(await server.get()).toBe('200 three');
});

it('reports failed when an accept callback throws and has no error handler', async () => {
  const root = await t.root();
  const entry = "let msg = require('./msg');\nmodule.hot.accept('./msg', () => { throw new Error('callback broke'); });\nmodule.exports = (req, res) => res.end(msg);\n";
  const v1 = await writeRelease(root, { 'index.js': entry, 'msg.js': "module.exports = 'one';" });
  const v2 = await writeRelease(root, { 'index.js': entry, 'msg.js': "module.exports = 'two';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'failed', error: { message: 'index.js:2:42: callback broke' } });
  expect(app.status()).toBe('fail');
});

it('rejects a release without package.json with a stable code and changes nothing', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': idx, 'msg.js': "module.exports = 'one';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  await expect(app.update(root)).rejects.toMatchObject({ code: 'HOT_ERR_MANIFEST' });
  await expect(app.update(`${root}/missing`)).rejects.toMatchObject({ code: 'HOT_ERR_MANIFEST' });
  expect(app.dir).toBe(v1);
  expect(app.status()).toBe('idle');
  expect(await server.get()).toBe('200 one');
});

it('rejects an entry that exports no handler with HOT_ERR_HANDLER and leaves nothing loaded', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': 'module.exports = { port: 3000 };' });
  await expect(hostApp({ name: 'a', dir: v1 })).rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
  // The same directory can be hosted again: nothing of the failed start is left registered.
  await expect(hostApp({ name: 'a', dir: v1 })).rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
});

it('serves the new entry when it evaluated even though another part of the update failed', async () => {
  const root = await t.root();
  const files = (a: string, b: string): Record<string, string> => ({
    'index.js': "const mid = require('./mid');\nconst b = require('./b');\nmodule.exports = (req, res) => res.end(mid.a() + ' ' + b);\n",
    'mid.js': "let a = require('./a');\nmodule.hot.accept('./a', () => { throw new Error('mid could not take a'); });\nexports.a = () => a;\n",
    'a.js': `module.exports = ${JSON.stringify(a)};`,
    'b.js': `module.exports = ${JSON.stringify(b)};`,
  });
  const v1 = await writeRelease(root, files('a1', 'b1'));
  const v2 = await writeRelease(root, files('a2', 'b2'));
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'failed', error: { message: 'mid.js:2:40: mid could not take a' }, accepted: ['index.js'] });
  // mid kept its old `a` (its callback threw); the entry and b are new.
  expect(await server.get()).toBe('200 a1 b2');
});
