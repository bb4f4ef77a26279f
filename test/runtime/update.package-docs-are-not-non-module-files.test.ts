import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const base = {
  'index.js': "const dep = require('dep');\nmodule.exports = (req, res) => res.end(dep);\n",
  'node_modules/dep/package.json': { name: 'dep', version: '1.0.0' },
  'node_modules/dep/index.js': "module.exports = 'dep';",
  'node_modules/dep/README.md': '# dep',
};

it('a dependency added with its README, LICENSE, CHANGELOG, typings and source maps changes nothing', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, base);
  const v2 = await writeRelease(root, {
    ...base,
    'node_modules/dep/README.md': '# dep, documented better',
    'node_modules/newdep/package.json': { name: 'newdep', version: '1.0.0' },
    'node_modules/newdep/index.js': "module.exports = 'new';",
    'node_modules/newdep/README': 'read me',
    'node_modules/newdep/LICENSE': 'MIT',
    'node_modules/newdep/LICENCE.txt': 'MIT',
    'node_modules/newdep/CHANGELOG.md': '## 1.0.0',
    'node_modules/newdep/docs/guide.markdown': 'guide',
    'node_modules/newdep/index.d.ts': 'export {};',
    'node_modules/newdep/types/index.d.cts': 'export {};',
    'node_modules/newdep/index.js.map': '{}',
  });
  const app = t.defer(await hostApp({ name: 'd', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  const result = await app.update(v2);
  expect(result).toMatchObject({ outcome: 'unchanged', disposed: [] });
  expect(result.reason).toBeUndefined();
  expect(await server.get()).toBe('200 dep');
});

it('other files of a package, and docs of the app itself, still count', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { ...base, 'README.md': '# app' });
  const v2 = await writeRelease(root, { ...base, 'README.md': '# app' , 'node_modules/dep/templates/page.html': '<p>' });
  const v3 = await writeRelease(root, { ...base, 'README.md': '# the app', 'node_modules/dep/templates/page.html': '<p>' });
  const app = t.defer(await hostApp({ name: 'd', dir: v1 }));
  expect(await app.update(v2)).toMatchObject({ outcome: 'hot', reason: 'non-module file changed: node_modules/dep/templates/page.html' });
  expect(await app.update(v3)).toMatchObject({ outcome: 'hot', reason: 'non-module file changed: README.md' });
});
