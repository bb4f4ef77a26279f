import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import type { ReleaseChanges } from '../../services/server/file-hashes.js';
import { cleanupStack, serve } from '../helpers/release.js';
import { serviceReleases } from '../helpers/service-releases.js';

const t = cleanupStack();
afterEach(t.run);

const index = `const util = require('./lib/util');
const other = require('./lib/other');
module.exports = (req, res) => res.end(util.marker + ' ' + other.marker);
`;
const app = (util: string, other: string): Record<string, string | object> => ({
  'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } },
  'index.js': index,
  'lib/util.js': `exports.marker = '${util}';\n`,
  'lib/other.js': `exports.marker = '${other}';\n`,
  'views/page.html': 'p',
});

const changesFile = (releases: string, v: string) => path.join(releases, v, '.hotdeploy/changes.json');
const readChanges = async (releases: string, v: string) => JSON.parse(await readFile(changesFile(releases, v), 'utf8')) as ReleaseChanges;

async function hosted(releases: string, version = '1.0.0') {
  const hosted = t.defer(await hostApp({ name: `a-${releases}`, dir: path.join(releases, version) }));
  return { app: hosted, server: t.defer(await serve(hosted.handler)) };
}

describe('an update reads the whole files.json when changes.json does not describe the change from the worker\'s release', () => {
  it('when the worker is on another release than the base (it skipped one)', async () => {
    // 2.0.0 changes util, 3.0.0 changes other: 3.0.0's changes.json only knows the second step.
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1'), app('u2', 'o2')]);
    expect((await readChanges(releases, '3.0.0')).base.version).toBe('2.0.0');
    const { app: a, server } = await hosted(releases);
    expect(await a.update(path.join(releases, '3.0.0'))).toMatchObject({ outcome: 'hot', outdated: ['lib/other.js', 'lib/util.js'] });
    expect(await server.get()).toBe('200 u2 o2');
  });

  it('when the base\'s files.json the worker read is not the one changes.json was made from', async () => {
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1')]);
    // The worker's files.json also lists a template 2.0.0 does not have: only the full read sees it go.
    const filesJson = path.join(releases, '1.0.0/.hotdeploy/files.json');
    const files = JSON.parse(await readFile(filesJson, 'utf8'));
    files.files['views/gone.html'] = 'a'.repeat(64);
    await writeFile(filesJson, JSON.stringify(files));
    const { app: a, server } = await hosted(releases);
    expect(await a.update(path.join(releases, '2.0.0'))).toMatchObject({ outcome: 'hot', reason: 'non-module file changed: views/gone.html' });
    expect(await server.get()).toBe('200 u2 o1');
  });

  // Each case starts from a changes.json that lies (it names other.js, not util.js, as changed) and
  // breaks one thing about it: were any check skipped, the lie would be believed.
  const lie = (c: ReleaseChanges): ReleaseChanges => ({ ...c, changed: { 'lib/other.js': 'b'.repeat(64) } });
  const broken: [string, (c: ReleaseChanges) => unknown][] = [
    ['another version', (c) => ({ ...c, version: 2 })],
    ['another base version', (c) => ({ ...c, base: { ...c.base, version: '0.9.0' } })],
    ['another base files.json', (c) => ({ ...c, base: { ...c.base, files: 'c'.repeat(64) } })],
    ['no files hash', (c) => ({ ...c, files: 42 })],
    ['a hash that is not a string', (c) => ({ ...c, changed: { 'lib/other.js': 1 } })],
    ['removed not a list', (c) => ({ ...c, removed: 'lib/old.js' })],
    ['a removed path the base does not have', (c) => ({ ...c, removed: ['lib/never.js'] })],
    ['a path both changed and removed', (c) => ({ ...c, removed: ['lib/other.js'] })],
  ];

  it('but trusts one that matches (which is how the cases below tell the two paths apart)', async () => {
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1')]);
    await writeFile(changesFile(releases, '2.0.0'), JSON.stringify(lie(await readChanges(releases, '2.0.0'))));
    const { app: a } = await hosted(releases);
    expect(await a.update(path.join(releases, '2.0.0'))).toMatchObject({ outcome: 'hot', outdated: ['lib/other.js'] });
  });

  it.each(broken)('when changes.json has %s', async (_name, breakIt) => {
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1')]);
    await writeFile(changesFile(releases, '2.0.0'), JSON.stringify(breakIt(lie(await readChanges(releases, '2.0.0')))));
    const { app: a, server } = await hosted(releases);
    expect(await a.update(path.join(releases, '2.0.0'))).toMatchObject({ outcome: 'hot', outdated: ['lib/util.js'] });
    expect(await server.get()).toBe('200 u2 o1');
  });

  it('when the worker\'s release has no files.json (its index is a listing)', async () => {
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1')]);
    await writeFile(changesFile(releases, '2.0.0'), JSON.stringify(lie(await readChanges(releases, '2.0.0'))));
    await rm(path.join(releases, '1.0.0/.hotdeploy/files.json'));
    const { app: a, server } = await hosted(releases);
    expect(await a.update(path.join(releases, '2.0.0'))).toMatchObject({ outcome: 'hot', outdated: ['lib/util.js'] });
    expect(await server.get()).toBe('200 u2 o1');
  });

  it.each([
    ['missing', (file: string) => rm(file)],
    ['not JSON', (file: string) => writeFile(file, '{"version":1,')],
  ])('when changes.json is %s', async (_name, spoil) => {
    const releases = await serviceReleases(await t.root(), [app('u1', 'o1'), app('u2', 'o1')]);
    await spoil(changesFile(releases, '2.0.0'));
    const { app: a, server } = await hosted(releases);
    expect(await a.update(path.join(releases, '2.0.0'))).toMatchObject({ outcome: 'hot', outdated: ['lib/util.js'] });
    expect(await server.get()).toBe('200 u2 o1');
  });
});
