import { afterEach, beforeEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour, type Flavour } from '../helpers/flavours.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';
import { waitFor } from '../helpers/wait.js';

const t = cleanupStack();
const g = globalThis as unknown as { log: string[]; release: Record<string, () => void> };
beforeEach(() => {
  g.log = [];
  g.release = {};
});
afterEach(t.run);

// `/slow` answers only when the test calls globalThis.release[version]().
const entry = (f: Flavour, v: string): string => `${f.hot}.retire(() => globalThis.log.push('retire ${v}'));
${f.hot}.dispose(() => globalThis.log.push('dispose ${v}'));
${f.exportDefault(`(req, res) => {
  if (req.url === '/slow') {
    globalThis.log.push('slow started on ${v}');
    globalThis.release['${v}'] = () => res.end('slow ${v}');
    return;
  }
  res.end('${v}');
}`)}
`;

eachFlavour('retire(cb) after the requests in flight', (f) => {
  const release = (v: string): Record<string, string | object> => ({ 'package.json': f.pkg(), 'index.js': entry(f, v) });

  it('finishes requests that started on the old version on it, and retires the old version only when they are done', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, release('v1'));
    const v2 = await writeRelease(root, release('v2'));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    const slow = server.get('/slow');
    await waitFor('the slow request', () => g.release.v1 !== undefined, 5000);

    expect((await app.update(v2)).outcome).toBe('hot');
    expect(await server.get()).toBe('200 v2');
    // dispose ran before v2 evaluated; retire waits for the request still on v1.
    expect(g.log).toEqual(['slow started on v1', 'dispose v1']);

    g.release.v1!();
    expect(await slow).toBe('200 slow v1');
    await waitFor('retire v1', () => g.log.includes('retire v1'), 5000);
    expect(g.log).toEqual(['slow started on v1', 'dispose v1', 'retire v1']);
  });

  it('retires after drainTimeoutMs when an old request never finishes', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, release('v1'));
    const v2 = await writeRelease(root, release('v2'));
    const app = t.defer(await hostApp({ name: 'a', dir: v1, drainTimeoutMs: 200 }));
    const server = t.defer(await serve(app.handler));
    void server.get('/slow').catch(() => undefined);
    await waitFor('the slow request', () => g.release.v1 !== undefined, 5000);
    const started = Date.now();
    await app.update(v2);
    await waitFor('retire v1 after the drain timeout', () => g.log.includes('retire v1'), 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('retires at once when nothing is in flight', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, release('v1'));
    const v2 = await writeRelease(root, release('v2'));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    await app.update(v2);
    await waitFor('retire v1', () => g.log.includes('retire v1'), 1000);
  });
});

it('answers 500 when the current handler throws, without affecting later requests', async () => {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': "module.exports = (req, res) => { if (req.url === '/boom') throw new Error('x'); res.end('fine'); };" });
  const app = t.defer(await hostApp({ name: 'a', dir: v1, logger: { error: () => undefined, info: () => undefined } }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get('/boom')).toBe('500 ');
  expect(await server.get()).toBe('200 fine');
});
