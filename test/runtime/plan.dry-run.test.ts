import { afterEach, beforeEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cachedUnder, cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

/** index.js logs its evaluation, its dispose and (webpack's module.hot only) every status change. */
const files = (f: Flavour, text: string, msgHead = ''): Record<string, string | object> => ({
  'package.json': f.pkg(),
  'index.js': `${f.use('msg', './msg.js')}
${f.hot}.dispose(() => globalThis.log.push('dispose'));
${f.name === 'cjs' ? "module.hot.status((s) => globalThis.log.push('status ' + s));" : ''}
globalThis.log.push('evaluate');
${f.exportDefault('(req, res) => res.end(msg)')}
`,
  'msg.js': `${msgHead}${f.exportDefault(JSON.stringify(text))}`,
});

eachFlavour('plan()', (f) => {
  it('returns the outcome update() then has, without disposing, evaluating or changing status', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, files(f, 'one'));
    const v2 = await writeRelease(root, files(f, 'two'));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    g.log = [];
    const planned = await app.plan(v2);
    expect(planned).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'], accepted: ['index.js'], from: v1, to: v2 });
    expect(g.log).toEqual([]);
    expect(app.status()).toBe('idle');
    expect(app.dir).toBe(v1);
    if (f.name === 'cjs') expect(cachedUnder(v2)).toEqual([]);
    expect(await server.get()).toBe('200 one');

    const applied = await app.update(v2);
    expect({ ...applied, durationMs: 0 }).toEqual({ ...planned, durationMs: 0 });
    expect(await server.get()).toBe('200 two');
  });

  it('reports a decline without aborting anything', async () => {
    const root = await t.root();
    const declining = `${f.hot}.decline();\n`;
    const app = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, files(f, 'one', declining)) }));
    g.log = [];
    expect(await app.plan(await writeRelease(root, files(f, 'two', declining)))).toMatchObject({ outcome: 'declined', chain: ['msg.js'] });
    expect(app.status()).toBe('idle');
    expect(g.log).toEqual([]);
  });
});
