import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { CJS, eachFlavour } from '../helpers/flavours.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

async function hostAndGet(files: Record<string, string | object>): Promise<string> {
  const root = await t.root();
  const app = t.defer(await hostApp({ name: 'h', dir: await writeRelease(root, files, { linkNodeModules: true }) }));
  const server = t.defer(await serve(app.handler));
  return server.get();
}

eachFlavour('what the entry may export in handler mode', (f) => {
  const entry = (source: string): Record<string, string | object> => ({ 'package.json': f.pkg(), 'index.js': source });

  it('a plain (req, res) handler', async () => {
    expect(await hostAndGet(entry(f.exportDefault("(req, res) => res.end('plain')")))).toBe('200 plain');
  });

  it('a handler under a handler export', async () => {
    expect(await hostAndGet(entry(f.exportNamed('handler', "function (req, res, next) { res.end('named'); }")))).toBe('200 named');
  });

  it('an async factory returning a handler', async () => {
    expect(await hostAndGet(entry(f.exportDefault("async () => (req, res) => res.end('from factory')")))).toBe('200 from factory');
  });

  it('a fastify instance, made ready and routed into', async () => {
    const source = `${f.use('Fastify', 'fastify')}\nconst app = Fastify();\napp.get('/', async () => 'from fastify');\n${f.exportDefault('app')}`;
    expect(await hostAndGet(entry(source))).toBe('200 from fastify');
  });

  it('a factory of a fastify instance', async () => {
    const source = `${f.use('Fastify', 'fastify')}\n${f.exportDefault("function build() {\n  const app = Fastify();\n  app.get('/', async () => 'built');\n  return app;\n}")}`;
    expect(await hostAndGet(entry(source))).toBe('200 built');
  });

  it('anything else is HOT_ERR_HANDLER', async () => {
    const root = await t.root();
    await expect(hostApp({ name: 'h', dir: await writeRelease(root, entry(f.exportDefault('(x) => x'))) }))
      .rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
  });

  it('swaps a fastify app built by a factory and closes the old instance once its requests drained', async () => {
    const root = await t.root();
    const release = (v: string, text: string): Record<string, string | object> => ({
      'package.json': f.pkg(),
      'index.js': `${f.use('Fastify', 'fastify')}\n${f.use('msg', './msg.js')}\n${f.exportDefault(`async () => {
  const app = Fastify();
  app.addHook('onClose', async () => { globalThis.log.push('closed ${v}'); });
  app.get('/', async () => msg + ' ${v}');
  return app;
}`)}`,
      'msg.js': f.exportDefault(JSON.stringify(text)),
    });
    const app = t.defer(await hostApp({ name: 'f', dir: await writeRelease(root, release('v1', 'one'), { linkNodeModules: true }) }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 one v1');
    expect(await app.update(await writeRelease(root, release('v2', 'two'), { linkNodeModules: true }))).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
    expect(await server.get()).toBe('200 two v2');
    await waitFor('the old fastify instance to close', () => g.log.includes('closed v1'), 5000);
    expect(g.log).toEqual(['closed v1']);
  });
});

describe('what a CommonJS entry may export in handler mode', () => {
  it('a handler under a default export (TypeScript-compiled)', async () => {
    const source = "exports.__esModule = true;\nexports.default = (req, res) => res.end('default');";
    expect(await hostAndGet({ 'package.json': CJS.pkg(), 'index.js': source })).toBe('200 default');
  });
});
