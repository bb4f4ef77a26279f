import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const pkg = { name: 'esm-app', version: '1.0.0', type: 'module', main: 'index.js' };

it.runIf(esmHotSupported)('hosts `export default` of a fastify instance and of an async factory, swapping them when the entry is reached', async () => {
  const root = await t.root();
  const instance = (text: string): Record<string, string | object> => ({
    'package.json': pkg,
    'index.js': `import Fastify from 'fastify';\nimport { text } from './text.js';\nconst app = Fastify();\napp.get('/', async () => text);\nexport default app;\n`,
    'text.js': `export const text = ${JSON.stringify(text)};\n`,
  });
  const a = t.defer(await hostApp({ name: 'fastify-esm', dir: await writeRelease(root, instance('one'), { linkNodeModules: true }) }));
  const serverA = t.defer(await serve(a.handler));
  expect(await serverA.get()).toBe('200 one');
  expect(await a.update(await writeRelease(root, instance('two'), { linkNodeModules: true }))).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
  expect(await serverA.get()).toBe('200 two');

  const factory = (text: string): Record<string, string | object> => ({
    'package.json': pkg,
    'index.js': `import Fastify from 'fastify';\nexport default async function build() {\n  const app = Fastify();\n  app.get('/', async () => ${JSON.stringify(text)});\n  return app;\n}\n`,
  });
  const b = t.defer(await hostApp({ name: 'fastify-factory-esm', dir: await writeRelease(root, factory('three'), { linkNodeModules: true }) }));
  const serverB = t.defer(await serve(b.handler));
  expect(await serverB.get()).toBe('200 three');
  expect(await b.update(await writeRelease(root, factory('four'), { linkNodeModules: true }))).toMatchObject({ outcome: 'hot', accepted: ['index.js'] });
  expect(await serverB.get()).toBe('200 four');
});

it.runIf(esmHotSupported)('hosts a named `handler` export', async () => {
  const root = await t.root();
  const files = { 'package.json': pkg, 'index.js': `export const handler = (req, res) => res.end('named');\n` };
  const app = t.defer(await hostApp({ name: 'named-esm', dir: await writeRelease(root, files) }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 named');
});
