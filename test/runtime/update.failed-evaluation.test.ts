import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { eachFlavour } from '../helpers/flavours.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

eachFlavour('a failed update', (f) => {
  const idx = `${f.use('msg', './msg.js')}\n${f.exportDefault('(req, res) => res.end(msg)')}\n`;
  const files = (rest: Record<string, string>): Record<string, string | object> => ({ 'package.json': f.pkg(), ...rest });

  it('reports failed with the error and status fail when new code throws, keeps serving the old handler, and recovers on the next update', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'msg.js': f.exportDefault("'one'") }));
    const v2 = await writeRelease(root, files({ 'index.js': idx, 'msg.js': `throw new Error('syntax is fine, logic is not');\n${f.exportDefault("'two'")}` }));
    const v3 = await writeRelease(root, files({ 'index.js': idx, 'msg.js': f.exportDefault("'three'") }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));

    const failed = await app.update(v2);
    expect(failed).toMatchObject({ outcome: 'failed', disposed: ['index.js', 'msg.js'], accepted: [] });
    // The reason starts where in the release the error comes from.
    expect(failed.error?.message).toMatch(/^msg\.js:1:\d+: syntax is fine, logic is not$/);
    expect(failed.error?.stack).toContain('msg.js');
    expect(app.status()).toBe('fail');
    expect(await server.get()).toBe('200 one');

    const fixed = await app.update(v3);
    expect(fixed.outcome).toBe('hot');
    expect(app.status()).toBe('idle');
    expect(await server.get()).toBe('200 three');
  });

  it('reports failed when an accept callback throws and has no error handler', async () => {
    const root = await t.root();
    const entry = `${f.use('msg', './msg.js')}\n${f.hot}.accept('./msg.js', () => { throw new Error('callback broke'); });
${f.exportDefault('(req, res) => res.end(msg)')}\n`;
    const v1 = await writeRelease(root, files({ 'index.js': entry, 'msg.js': f.exportDefault("'one'") }));
    const v2 = await writeRelease(root, files({ 'index.js': entry, 'msg.js': f.exportDefault("'two'") }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const result = await app.update(v2);
    expect(result).toMatchObject({ outcome: 'failed', error: { message: expect.stringMatching(/^index\.js:\d+:\d+: callback broke$/) } });
    expect(app.status()).toBe('fail');
  });

  it('rejects a release without package.json with a stable code and changes nothing', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, files({ 'index.js': idx, 'msg.js': f.exportDefault("'one'") }));
    const app = t.defer(await hostApp({ name: 'a', dir: v1 }));
    const server = t.defer(await serve(app.handler));
    await expect(app.update(root)).rejects.toMatchObject({ code: 'HOT_ERR_MANIFEST' });
    await expect(app.update(`${root}/missing`)).rejects.toMatchObject({ code: 'HOT_ERR_MANIFEST' });
    expect(app.dir).toBe(v1);
    expect(app.status()).toBe('idle');
    expect(await server.get()).toBe('200 one');
  });

  it('rejects an entry that exports no handler with HOT_ERR_HANDLER and leaves nothing loaded', async () => {
    const root = await t.root();
    const v1 = await writeRelease(root, files({ 'index.js': f.exportDefault('{ port: 3000 }') }));
    await expect(hostApp({ name: 'a', dir: v1 })).rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
    // The same directory can be hosted again: nothing of the failed start is left registered.
    await expect(hostApp({ name: 'a', dir: v1 })).rejects.toMatchObject({ code: 'HOT_ERR_HANDLER' });
  });

  it('serves the new entry when it evaluated even though another part of the update failed', async () => {
    const root = await t.root();
    const release = (a: string, b: string): Record<string, string | object> => files({
      'index.js': `${f.use('mid', './mid.js')}\n${f.use('b', './b.js')}\n${f.exportDefault("(req, res) => res.end(mid() + ' ' + b)")}\n`,
      'mid.js': `${f.use('a', './a.js')}\n${f.hot}.accept('./a.js', () => { throw new Error('mid could not take a'); });\n${f.exportDefault('() => a')}\n`,
      'a.js': f.exportDefault(JSON.stringify(a)),
      'b.js': f.exportDefault(JSON.stringify(b)),
    });
    const app = t.defer(await hostApp({ name: 'a', dir: await writeRelease(root, release('a1', 'b1')) }));
    const server = t.defer(await serve(app.handler));
    const result = await app.update(await writeRelease(root, release('a2', 'b2')));
    expect(result).toMatchObject({ outcome: 'failed', error: { message: expect.stringMatching(/^mid\.js:\d+:\d+: mid could not take a$/) }, accepted: ['index.js'] });
    // mid kept its old `a` (its callback threw); the entry and b are new.
    expect(await server.get()).toBe('200 a1 b2');
  });
});
