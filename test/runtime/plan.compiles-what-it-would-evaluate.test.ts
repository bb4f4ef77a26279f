import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

const idx = "const routes = require('./routes');\nmodule.exports = (req, res) => res.end(routes.answer);\n";

async function planOf(next: Record<string, string>): Promise<Awaited<ReturnType<Awaited<ReturnType<typeof hostApp>>['plan']>>> {
  const root = await t.root();
  const v1 = await writeRelease(root, { 'index.js': idx, 'routes.js': "exports.answer = 'one';" });
  const v2 = await writeRelease(root, { 'index.js': idx, ...next });
  const app = t.defer(await hostApp({ name: 'p', dir: v1 }));
  const server = t.defer(await serve(app.handler));
  const planned = await app.plan(v2);
  // A dry run changes nothing, whatever it finds.
  expect(await server.get()).toBe('200 one');
  return planned;
}

it('predicts fail, with file:line:column, for a changed module that does not compile', async () => {
  const planned = await planOf({ 'routes.js': "exports.answer = 'two';\nconsole.log('x'\n" });
  expect(planned).toMatchObject({ outcome: 'failed', reason: 'routes.js:2:13: SyntaxError: missing ) after argument list' });
  expect(planned.error?.message).toBe(planned.reason);
});

it('predicts fail for a top-level require of a module that does not resolve in the new release', async () => {
  const planned = await planOf({ 'routes.js': "const missing = require('./helpers/gone');\nexports.answer = 'two';\n" });
  expect(planned).toMatchObject({ outcome: 'failed', reason: "routes.js:1:17: Cannot find module './helpers/gone'" });
  const bare = await planOf({ 'routes.js': "require('left-pad-that-is-not-installed');\nexports.answer = 'two';\n" });
  expect(bare.reason).toBe("routes.js:1:1: Cannot find module 'left-pad-that-is-not-installed'");
});

it('checks a module the update would load for the first time, and JSON the same way', async () => {
  const planned = await planOf({ 'routes.js': "exports.answer = require('./added').x;\n", 'added.js': 'exports.x = ;\n' });
  expect(planned).toMatchObject({ outcome: 'failed', reason: 'added.js:1:13: SyntaxError: Unexpected token \';\'' });
  const json = await planOf({ 'routes.js': "exports.answer = require('./data.json').x;\n", 'data.json': '{ "x": 1, }' });
  expect(json.outcome).toBe('failed');
  expect(json.reason).toMatch(/^data\.json: SyntaxError: /);
});

it('stays hot for requires it cannot know run: in a function, in a try, behind an arrow', async () => {
  const planned = await planOf({
    'routes.js': [
      "try { require('optional-thing') } catch {}",
      "function later() { return require('./not-yet'); }",
      "const lazy = () => require('./neither');",
      "exports.answer = 'two';",
    ].join('\n'),
  });
  expect(planned).toMatchObject({ outcome: 'hot', outdated: ['routes.js'] });
});
