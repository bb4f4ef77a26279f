import Module from 'node:module';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cachedUnder, cleanupStack, moduleCache, repoRoot, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
afterEach(t.run);

// The worked case of the README (the Express router of the hot-swapping articles): the entry mounts
// the router through a closure and accepts it, so a router change swaps only the router. As
// CommonJS the callback requires the router again; as an ES module it gets the new namespace.
const index = (f: Flavour): string => `${f.use('express', 'express')}
const app = express();
${f.use('router', './router.js')}
app.use((req, res, next) => router(req, res, next));
${f.acceptUse('router', './router.js')}
globalThis.entryEvaluations = (globalThis.entryEvaluations ?? 0) + 1;
${f.exportDefault('app')}
`;
const router = (f: Flavour, text: string): string => `${f.use('express', 'express')}
const router = express.Router();
router.get('/', (req, res) => res.send(${JSON.stringify(text)}));
${f.exportDefault('router')}
`;

eachFlavour('the Express worked case', (f) => {
  const release = async (root: string, entry: string, text: string): Promise<string> =>
    writeRelease(root, { 'package.json': f.pkg(), 'index.js': entry, 'router.js': router(f, text) }, { linkNodeModules: true });

  it('swaps an Express router mounted through a closure, keeping the entry and express itself', async () => {
    const root = await t.root();
    const v1 = await release(root, index(f), 'hello andy');
    const v2 = await release(root, index(f), 'hello again');
    const g = globalThis as unknown as { entryEvaluations: number };
    g.entryEvaluations = 0;
    const app = t.defer(await hostApp({ name: 'express-app', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 hello andy');
    const entryBefore = moduleCache[`${v1}/index.js`];
    const expressFile = Object.keys(moduleCache).find((k) => k.startsWith(`${repoRoot}/node_modules/express/`));
    expect(expressFile).toBeDefined();
    const expressBefore = moduleCache[expressFile!];

    const result = await app.update(v2);

    expect(result).toMatchObject({ outcome: 'hot', outdated: ['router.js'], disposed: ['router.js'], accepted: ['index.js'] });
    expect(await server.get()).toBe('200 hello again');
    expect(g.entryEvaluations).toBe(1);
    // express (CommonJS in both cases, outside the release) was never evicted. (Identity checks,
    // not toBe: printing an Express app on failure throws.)
    expect(moduleCache[expressFile!] === expressBefore).toBe(true);
    if (f.name === 'esm') return;
    // The entry kept its instance and its cache key, under the release it was evaluated from.
    expect(moduleCache[`${v1}/index.js`] === entryBefore).toBe(true);
    expect(cachedUnder(v1)).toEqual([`${v1}/index.js`]);
    expect(cachedUnder(v2)).toEqual([`${v2}/router.js`]);
    // Node's resolution cache forgets the release the app left (swept after the update).
    const pathCache = (Module as unknown as { _pathCache: Record<string, string> })._pathCache;
    await waitFor('the path cache sweep', () => !Object.entries(pathCache).some(([k, v]) => k.includes(v1) || v.startsWith(v1)), 2000);
  });

  it('swaps the whole Express app when nothing accepts the router: the host accepts the entry', async () => {
    const root = await t.root();
    const plain = `${f.use('express', 'express')}\nconst app = express();\n${f.use('router', './router.js')}\napp.use(router);\n${f.exportDefault('app')}\n`;
    const app = t.defer(await hostApp({ name: 'express-app', dir: await release(root, plain, 'one') }));
    const server = t.defer(await serve(app.handler));
    expect(await server.get()).toBe('200 one');
    const result = await app.update(await release(root, plain, 'two'));
    expect(result).toMatchObject({ outcome: 'hot', disposed: ['index.js', 'router.js'], accepted: ['index.js'] });
    expect(await server.get()).toBe('200 two');
  });
});
