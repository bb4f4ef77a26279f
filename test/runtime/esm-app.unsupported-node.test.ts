import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const pkg = { name: 'esm-app', version: '1.0.0', type: 'module', main: 'index.js' };
const files = (text: string): Record<string, string | object> => ({
  'package.json': pkg,
  'index.js': `import { msg } from './msg.js';\nexport default (req, res) => res.end(msg);\n`,
  'msg.js': `export const msg = ${JSON.stringify(text)};\n`,
});

// Node lines without `module.registerHooks` (20, 22 before 22.15) load ES module apps but cannot swap them.
it.runIf(!esmHotSupported)('loads an ESM app, and reports any change as unaccepted with reason esm-unsupported-node while the old code serves', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, files('one'));
  const v2 = await writeRelease(root, files('two'));
  const app = t.defer(await hostApp({ name: 'esm', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 one');
  expect(await app.update(v2)).toMatchObject({ outcome: 'unaccepted', reason: 'esm-unsupported-node' });
  expect(await server.get()).toBe('200 one');
});

it('reports an identical ESM release as unchanged', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, files('one'));
  const v2 = await writeRelease(root, files('one'));
  const app = t.defer(await hostApp({ name: 'esm', dir: v1 }));
  expect(await app.update(v2)).toMatchObject({ outcome: 'unchanged' });
});

it.runIf(!esmHotSupported)('treats an .mjs entry as ESM', async () => {
  const root = await t.root();
  const mjs = (text: string): Record<string, string | object> => ({
    'package.json': { name: 'm', version: '1.0.0', main: 'index.mjs' },
    'index.mjs': `export default (req, res) => res.end(${JSON.stringify(text)});\n`,
  });
  const app = t.defer(await hostApp({ name: 'mjs', dir: await writeRelease(root, mjs('one')) }));
  expect(await app.update(await writeRelease(root, mjs('two')))).toMatchObject({ outcome: 'unaccepted', reason: 'esm-unsupported-node' });
});
