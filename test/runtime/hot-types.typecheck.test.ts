import { execFile } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { cleanupStack, repoRoot } from '../helpers/release.js';
import { writeTree } from '../helpers/tmp.js';

const t = cleanupStack();
afterEach(t.run);

const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');

/** A TypeScript CommonJS app in a temp dir that has `hotdeploy` (this repository) installed. */
async function typecheck(source: string, type: 'commonjs' | 'module' = 'commonjs'): Promise<{ ok: boolean; output: string }> {
  const dir = await t.root();
  await writeTree(dir, {
    'package.json': { name: 'ts-app', version: '1.0.0', type },
    'tsconfig.json': { compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], noEmit: true, skipLibCheck: false }, files: ['app.ts'] },
    'app.ts': source,
  });
  await writeTree(dir, { 'node_modules/.keep': '' });
  await symlink(repoRoot, path.join(dir, 'node_modules/hotdeploy'), 'dir');
  await symlink(path.join(repoRoot, 'node_modules/@types'), path.join(dir, 'node_modules/@types'), 'dir');
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [tsc, '-p', dir]);
    return { ok: true, output: stdout };
  } catch (err) {
    return { ok: false, output: String((err as { stdout?: string }).stdout ?? err) };
  }
}

const usage = `
const state = { count: 0 };
if (module.hot) {
  module.hot.accept('./router', (deps: string[]) => console.log(deps));
  module.hot.accept((err, ctx) => console.log(err, ctx.moduleId));
  module.hot.decline(['./db']);
  module.hot.dispose((data) => { data.count = state.count; });
  module.hot.retire(async () => { await Promise.resolve(); });
  const previous = module.hot.data?.count;
  const status: 'idle' | 'check' | 'prepare' | 'ready' | 'dispose' | 'apply' | 'abort' | 'fail' = module.hot.status();
  module.hot.addStatusHandler((s) => console.log(s, previous, status));
  if (!module.hot.active) module.hot.invalidate();
}
export {};
`;

it('types module.hot for a TypeScript app that imports hotdeploy/hot', async () => {
  const result = await typecheck(`import type {} from 'hotdeploy/hot';\n${usage}`);
  expect(result.output).toBe('');
  expect(result.ok).toBe(true);
});

it('types module.hot through a /// reference to hotdeploy/hot', async () => {
  const result = await typecheck(`/// <reference types="hotdeploy/hot" />\n${usage}`);
  expect(result.ok, result.output).toBe(true);
});

const esmUsage = `
let router: unknown;
if (import.meta.hot) {
  import.meta.hot.accept();
  import.meta.hot.accept((ns) => console.log(ns?.default));
  import.meta.hot.accept('./router.js', (ns) => { router = ns?.default; });
  import.meta.hot.accept(['./a.js', './b.js'], ([a, b]) => console.log(a?.x, b));
  import.meta.hot.dispose((data) => { data.router = router; });
  import.meta.hot.prune(async () => { await Promise.resolve(); });
  import.meta.hot.retire(() => undefined);
  const kept: unknown = import.meta.hot.data.router;
  if (kept === undefined) import.meta.hot.invalidate('no router');
  import.meta.hot.decline();
}
export {};
`;

it('types import.meta.hot for a TypeScript ES module that imports hotdeploy/hot', async () => {
  const result = await typecheck(`import type {} from 'hotdeploy/hot';\n${esmUsage}`, 'module');
  expect(result.output).toBe('');
  expect(result.ok).toBe(true);
});

it('rejects a misuse of module.hot', async () => {
  const result = await typecheck("import type {} from 'hotdeploy/hot';\nmodule.hot?.accept(42);\nexport {};\n");
  expect(result.ok).toBe(false);
  expect(result.output).toContain('app.ts');
});
