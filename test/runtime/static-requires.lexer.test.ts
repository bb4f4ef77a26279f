import { expect, it } from 'vitest';
import { staticRequires } from '../../agent/runtime/static-requires.js';

const requests = (source: string): string[] => staticRequires(source).map((r) => r.request);

it('finds the requires a module makes while it evaluates, with their line and column', () => {
  expect(staticRequires("#!/usr/bin/env node\nconst a = require('./a');\nmodule.exports = { b: require('./b') };\napp.use('/', require('./routes'));"))
    .toEqual([{ request: './a', line: 2, column: 11 }, { request: './b', line: 3, column: 23 }, { request: './routes', line: 4, column: 14 }]);
});

it('skips comments, strings, template text and regular expressions', () => {
  expect(requests([
    "// require('line-comment')",
    "/* require('block-comment') */",
    "const s = 'require(\\'in-a-string\\')';",
    'const t = `require("in-a-template") ${require(\'./interpolated\')}`;',
    "const re = /require\\('in-a-regex'\\)/g;",
    "const d = total / count; require('./after-a-division');",
  ].join('\n'))).toEqual(['./interpolated', './after-a-division']);
});

it('leaves out requires in blocks, functions, try, and behind arrows', () => {
  expect(requests([
    "try { require('optional') } catch {}",
    "if (process.env.X) { require('conditional') }",
    "function lazy() { return require('lazy'); }",
    "const arrow = () => require('arrow');",
    "module.exports = { load: () => require('in-an-object') };",
    "class A { m() { require('method') } }",
    "foo.require('member');",
    "const required = require('./kept');",
  ].join('\n'))).toEqual(['./kept']);
});
