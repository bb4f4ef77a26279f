import Module from 'node:module';
import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

type Patched = { _resolveFilename: unknown; prototype: { load: unknown; require: unknown } };
const loader = Module as unknown as Patched;
const snapshot = (): unknown[] => [loader._resolveFilename, loader.prototype.load, loader.prototype.require];

const files = { 'index.js': 'module.exports = (req, res) => res.end();' };

it('installs the loader hooks with the first app and undoes them with the last close', async () => {
  const original = snapshot();
  const root = await t.root();
  const a = await hostApp({ name: 'a', dir: await writeRelease(root, files) });
  const patched = snapshot();
  patched.forEach((fn, i) => expect(fn).not.toBe(original[i]));
  const b = await hostApp({ name: 'b', dir: await writeRelease(root, files) });
  expect(snapshot()).toEqual(patched);
  await a.close();
  expect(snapshot()).toEqual(patched);
  await b.close();
  expect(snapshot()).toEqual(original);
});

it('leaves a hook another tool wrapped around ours in place (tsx pattern)', async () => {
  const original = snapshot();
  const root = await t.root();
  const app = await hostApp({ name: 'a', dir: await writeRelease(root, files) });
  const ours = loader._resolveFilename as (...args: unknown[]) => unknown;
  const theirs = (...args: unknown[]): unknown => ours(...args);
  loader._resolveFilename = theirs;
  await app.close();
  expect(loader._resolveFilename).toBe(theirs);
  expect(loader.prototype.load).toBe(original[1]);
  loader._resolveFilename = original[0];
});
