import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import type { UpdateResult } from '../../agent/messages.js';
import { cleanupStack, serve } from '../helpers/release.js';
import { copyReleases, decision, serviceReleases, withoutChanges } from '../helpers/service-releases.js';

const t = cleanupStack();
afterEach(t.run);

// A handler app whose answer shows every file an update can change: a module, a resolution
// (./lib/conf is conf.json until a conf.js appears), a module that goes, a template, the entry.
const index = ({ old = true } = {}) => `const fs = require('fs');
const path = require('path');
const util = require('./lib/util');
const conf = require('./lib/conf');
${old ? "require('./lib/old');\n" : ''}const page = fs.readFileSync(path.join(__dirname, 'views/page.html'), 'utf8');
module.exports = (req, res) => res.end([util.marker, conf.name, page${old ? ", 'old'" : ''}].join(' '));
`;
const v1: Record<string, string | object> = {
  'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } },
  'index.js': index(),
  'main.js': "module.exports = (req, res) => res.end('main');\n",
  'lib/util.js': "exports.marker = 'u1';\n",
  'lib/old.js': 'exports.old = true;\n',
  'lib/conf.json': '{"name":"json"}',
  'views/page.html': 'p1',
};
const without = (files: Record<string, string | object>, rel: string) => Object.fromEntries(Object.entries(files).filter(([k]) => k !== rel));

/** Each case: the releases after v1, and what the app serves after updating to each in turn. */
const cases: [string, Record<string, string | object>[], string[]][] = [
  ['a changed module', [{ ...v1, 'lib/util.js': "exports.marker = 'u2';\n" }], ['200 u2 json p1 old']],
  ['an added file that a require now resolves to', [{ ...v1, 'lib/conf.js': "exports.name = 'js';\n" }], ['200 u1 js p1 old']],
  ['a removed module', [{ ...without(v1, 'lib/old.js'), 'index.js': index({ old: false }) }], ['200 u1 json p1']],
  ['a changed package.json (the entry moves)', [{ ...v1, 'package.json': { name: 'demo', version: '1.0.1', main: 'main.js', hotdeploy: { port: 0 } } }], ['200 main']],
  ['a changed non-module file', [{ ...v1, 'views/page.html': 'p2' }], ['200 u1 json p2 old']],
  ['two chained deltas', [
    { ...v1, 'lib/util.js': "exports.marker = 'u2';\n" },
    { ...v1, 'lib/util.js': "exports.marker = 'u2';\n", 'lib/conf.js': "exports.name = 'js';\n", 'views/page.html': 'p3' },
  ], ['200 u2 json p1 old', '200 u2 js p3 old']],
];

/** Hosts v1 of `releases`, updates it to each later release, and returns each update's result and answer. */
async function updates(releases: string, count: number): Promise<{ results: UpdateResult[]; answers: string[] }> {
  const app = t.defer(await hostApp({ name: `a-${releases}`, dir: path.join(releases, '1.0.0') }));
  const server = t.defer(await serve(app.handler));
  expect(await server.get()).toBe('200 u1 json p1 old');
  const results: UpdateResult[] = [];
  const answers: string[] = [];
  for (let i = 2; i <= count + 1; i++) {
    results.push(await app.update(path.join(releases, `${i}.0.0`)));
    answers.push(await server.get());
  }
  return { results, answers };
}

describe.each(cases)('a hot update to a release with changes.json, for %s', (_name, next, answers) => {
  const later = next.map((_, i) => `${i + 2}.0.0`);

  it('decides exactly as the full read of files.json does', async () => {
    const releases = await serviceReleases(await t.root(), [v1, ...next]);
    const full = await copyReleases(releases, await t.root());
    await withoutChanges(full, later);
    const withDelta = await updates(releases, next.length);
    const withFull = await updates(full, next.length);
    expect(withDelta.results.map(decision)).toEqual(withFull.results.map(decision));
    expect(withDelta.results.every((r) => r.outcome === 'hot')).toBe(true);
    expect(withDelta.answers).toEqual(answers);
    expect(withFull.answers).toEqual(answers);
  });

  it('reads only changes.json: it is right even when files.json says nothing changed', async () => {
    const releases = await serviceReleases(await t.root(), [v1, ...next]);
    const full = await copyReleases(releases, await t.root());
    await withoutChanges(full, later);
    // Each later files.json is v1's: read on the full path, it would say nothing changed.
    for (const v of later) await copyFile(path.join(releases, '1.0.0/.hotdeploy/files.json'), path.join(releases, v, '.hotdeploy/files.json'));
    const withDelta = await updates(releases, next.length);
    const withFull = await updates(full, next.length);
    expect(withDelta.results.map(decision)).toEqual(withFull.results.map(decision));
    expect(withDelta.answers).toEqual(answers);
  });
});
