import { afterEach, beforeEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cachedUnder, cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[] };
beforeEach(() => {
  g.log = [];
});
afterEach(t.run);

const idx = (v: string): string => `const msg = require('./msg');
module.hot.dispose(() => globalThis.log.push('dispose ${v}'));
module.hot.status((s) => globalThis.log.push('status ' + s));
globalThis.log.push('evaluate ${v}');
module.exports = (req, res) => res.end(msg);
`;

it('plan() returns the outcome update() then has, without disposing, evaluating or changing status', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': idx('v1'), 'msg.js': "module.exports = 'one';" });
  const v2 = await writeRelease(root, { 'index.js': idx('v1'), 'msg.js': "module.exports = 'two';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  g.log = [];
  const planned = await app.plan(v2);
  expect(planned).toMatchObject({ outcome: 'hot', outdated: ['msg.js'], disposed: ['index.js', 'msg.js'], accepted: ['index.js'], from: v1, to: v2 });
  expect(g.log).toEqual([]);
  expect(app.dir).toBe(v1);
  expect(cachedUnder(v2)).toEqual([]);
  expect(await server.get()).toBe('200 one');

  const applied = await app.update(v2);
  expect({ ...applied, durationMs: 0 }).toEqual({ ...planned, durationMs: 0 });
  expect(await server.get()).toBe('200 two');
});

it('plan() reports a decline without aborting anything', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': idx('v1') + "module.hot.decline('./msg');\n", 'msg.js': "module.exports = 'one';" });
  const v2 = await writeRelease(root, { 'index.js': idx('v1') + "module.hot.decline('./msg');\n", 'msg.js': "module.exports = 'two';" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
  g.log = [];
  expect(await app.plan(v2)).toMatchObject({ outcome: 'declined', chain: ['msg.js', 'index.js'] });
  expect(app.status()).toBe('idle');
  expect(g.log).toEqual([]);
});
