import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

async function hostAndGet(files: Record<string, string>): Promise<string> {
  const root = await t.root();
  const app = t.defer(await hostApp({ name: 'h', dir: await writeRelease(root, files, { linkNodeModules: true }) }));
  const server = t.defer(await serve(app.handler));
  return server.get();
}

describe('what the entry may export in handler mode', () => {
  it('a plain (req, res) handler', async () => {
    expect(await hostAndGet({ 'index.js': "module.exports = (req, res) => res.end('plain');" })).toBe('200 plain');
  });

  it('a handler under a default export (TypeScript-compiled)', async () => {
    expect(await hostAndGet({ 'index.js': "exports.__esModule = true;\nexports.default = (req, res) => res.end('default');" })).toBe('200 default');
  });

  it('a handler under a handler export', async () => {
    expect(await hostAndGet({ 'index.js': "exports.handler = function (req, res, next) { res.end('named'); };" })).toBe('200 named');
  });

  it('an async factory returning a handler', async () => {
    expect(await hostAndGet({ 'index.js': "module.exports = async () => (req, res) => res.end('from factory');" })).toBe('200 from factory');
  });

  it('a fastify instance, made ready and routed into', async () => {
    const entry = "const app = require('fastify')();\napp.get('/', async () => 'from fastify');\nmodule.exports = app;";
    expect(await hostAndGet({ 'index.js': entry })).toBe('200 from fastify');
  });

  it('a factory of a fastify instance', async () => {
    const entry = "module.exports = function build() {\n  const app = require('fastify')();\n  app.get('/', async () => 'built');\n  return app;\n};";
    expect(await hostAndGet({ 'index.js': entry })).toBe('200 built');
  });

  it('anything else is HOT_ERR_HANDLER', async () => {
    const root = await t.root();
    await expect(hostApp({ name: 'h', dir: await writeRelease(root, { 'index.js': 'module.exports = (x) => x;' }) }))
      .rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
  });
});

it('swaps a fastify app built by a factory and closes the old instance once its requests drained', async () => {
  const root = await t.root();
  const entry = (v: string): string => `module.exports = async () => {
  const app = require('fastify')();
  app.addHook('onClose', async () => { globalThis.log.push('closed ${v}'); });
  app.get('/', async () => require('./msg') + ' ${v}');
  return app;
};`;
  const v1 = await writeRelease(root, { 'index.js': entry('v1'), 'msg.js': "module.exports = 'one';" }, { linkNodeModules: true });
  const v2 = await writeRelease(root, { 'index.js': entry('v2'), 'msg.js': "module.exports = 'two';" }, { linkNodeModules: true });
  const app = t.defer(await hostApp({ name: 'f', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 one v1');
  expect(await app.update(v2)).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
  expect(await server.get()).toBe('200 two v2');
  await waitFor('the old fastify instance to close', () => g.log.includes('closed v1'), 5000);
  expect(g.log).toEqual(['closed v1']);
});
