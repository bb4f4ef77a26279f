import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, moduleCache, serve, writeFilesManifest, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

// An update moves the app to the new release in constant time: unchanged modules keep their
// require.cache keys, and the loader hook resolves their requests in the current release
// (agent/runtime/hooks.ts). These pin what that must preserve.

/** counter.js never changes: its lazy requires (relative and bare) are decided at call time. */
const files = (n: number, extra: Record<string, string> = {}): Record<string, string> => ({
  'index.js': "const counter = require('./counter');\nconst msg = require('./msg');\n"
    + "module.exports = (req, res) => res.end(req.url === '/' ? `${msg} ${counter.hit()}` : String(counter.lazy(req.url.slice(1))));\n",
  'counter.js': "let hits = 0;\nexports.hit = () => ++hits;\nexports.lazy = (request) => require(request.startsWith('dep') ? request : './' + request);\n",
  // Re-evaluated by every update; another request string than index.js's, so Node's own
  // relativeResolveCache cannot be what finds the existing instance.
  'msg.js': `module.exports = 'msg ${n} ' + require('./counter.js').hit();`,
  'late.js': `module.exports = 'late ${n}';`,
  'node_modules/dep/index.js': `module.exports = 'dep ${n}';`,
  ...extra,
});

/** Every key of the app's files in require.cache whose path ends in `/${rel}`, under `root`. */
function keysOf(root: string, rel: string): string[] {
  return Object.keys(moduleCache).filter((k) => k.startsWith(root + path.sep) && k.endsWith(`/${rel}`));
}

describe.each([
  ['with the deploy service\'s file index', true],
  ['with the listing fallback', false],
])('an unchanged module %s', (_name, manifest) => {
  const release = async (root: string, n: number, extra?: Record<string, string>): Promise<string> => {
    const dir = await writeRelease(root, files(n, extra));
    if (manifest) await writeFilesManifest(dir);
    return dir;
  };

  it('keeps one instance, and its lazy relative and bare requires load the current release\'s files, after many updates with every old release deleted', async () => {
    const root = await t.root();
    const first = await release(root, 0);
    const app = t.defer(await hostApp({ name: 'a', dir: first }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 msg 0 1 2');
    const counter = moduleCache[`${first}/counter.js`];
    expect(counter).toBeDefined();

    let current = first;
    for (let n = 1; n <= 6; n++) {
      const next = await release(root, n);
      const result = await app.update(next);
      expect(result).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'] });
      if (current !== first) await rm(current, { recursive: true });
      current = next;
    }
    // The release counter.js was evaluated from stays in use (its __dirname is there)...
    expect(app.releasesInUse()).toEqual([first, current].sort());
    // ...but nothing depends on it being on disk.
    await rm(first, { recursive: true });

    // msg.js and the entry, re-evaluated six times, still share the first counter.js instance.
    expect(await server.get()).toBe('200 msg 6 8 9');
    expect(keysOf(root, 'counter.js')).toEqual([`${first}/counter.js`]);
    expect(moduleCache[`${first}/counter.js`]).toBe(counter);
    expect(await server.get('/late')).toBe('200 late 6');
    expect(await server.get('/dep')).toBe('200 dep 6');
    expect(keysOf(root, 'late.js')).toEqual([`${current}/late.js`]);
    expect(keysOf(root, 'index.js')).toEqual([`${current}/index.js`, `${current}/node_modules/dep/index.js`]);
  });

  it('resolves a lazy require to a file added by a later release, and shares the unchanged module with new code that requires it', async () => {
    const root = await t.root();
    const first = await release(root, 0);
    const app = t.defer(await hostApp({ name: 'a', dir: first }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 msg 0 1 2');
    expect(await server.get('/late')).toBe('200 late 0');

    // A content-only update, then one that adds a file (and so may change how requests resolve),
    // then content-only again: late.js, loaded and unchanged, is shared throughout.
    expect((await app.update(await release(root, 0, { 'msg.js': "module.exports = 'msg a';" }))).outcome).toBe('hot');
    const added = await release(root, 0, {
      'msg.js': "module.exports = require('./added') + ' ' + require('./late');",
      'added.js': "module.exports = 'added';",
    });
    expect(await app.update(added)).toMatchObject({ outcome: 'hot', outdated: ['msg.js'] });
    expect(await server.get()).toBe('200 added late 0 3');
    expect(await server.get('/added')).toBe('200 added');
    const last = await release(root, 0, {
      'msg.js': "module.exports = require('./added') + ' again ' + require('./late');",
      'added.js': "module.exports = 'added';",
    });
    expect(await app.update(last)).toMatchObject({ outcome: 'hot', outdated: ['msg.js'] });
    expect(await server.get()).toBe('200 added again late 0 4');
    for (const rel of ['counter.js', 'late.js', 'added.js', 'msg.js']) expect(keysOf(root, rel)).toHaveLength(1);
  });

  it('still knows who requires an unchanged module after its parent was re-evaluated: a change to it reaches the parent', async () => {
    const root = await t.root();
    // Only the entry requires counter.js here.
    const own = (n: number): Record<string, string> => ({ 'msg.js': `module.exports = 'msg ${n}';` });
    const app = t.defer(await hostApp({ name: 'a', dir: await release(root, 0, own(0)) }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 msg 0 1');
    // The entry is re-evaluated three times, requiring counter.js each time: Node hands it the
    // existing instance from its own cache, without a resolution the runtime would see.
    for (let n = 1; n <= 3; n++) expect(await app.update(await release(root, n, own(n)))).toMatchObject({ outcome: 'hot', disposed: ['index.js', 'msg.js'] });
    expect(await server.get()).toBe('200 msg 3 2');
    const changed = await release(root, 3, {
      ...own(3),
      'counter.js': "let hits = 100;\nexports.hit = () => ++hits;\nexports.lazy = (request) => require('./' + request);\n",
    });
    expect(await app.update(changed)).toMatchObject({ outcome: 'hot', outdated: ['counter.js'], disposed: ['counter.js', 'index.js'] });
    expect(await server.get()).toBe('200 msg 3 101');
  });
});
