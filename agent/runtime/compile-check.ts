import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import vm from 'node:vm';
import { describeError } from './error-location.js';
import { fromRel } from './registry.js';
import { staticRequires } from './static-requires.js';

/** The parameters of Node's CommonJS wrapper (lib/internal/modules/cjs/loader.js). */
const WRAPPER_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];

/**
 * What `plan` can know of modules an update would evaluate without evaluating them: each compiles
 * (JavaScript through the CommonJS wrapper, JSON through `JSON.parse`), and each `require('x')` an
 * app module makes while it evaluates (static-requires.ts) resolves in the new release. Returns the
 * first problem as `file:line:column: message`, or undefined. What only evaluation shows — a throw,
 * a require made later, a fastify route declared twice — stays unknown.
 *
 * Modules the checked ones would load for the first time are checked too.
 */
export function checkModules(dir: string, rels: Iterable<string>, resolve: Resolve): string | undefined {
  const seen = new Set(rels);
  const queue = [...seen];
  for (let rel = queue.shift(); rel !== undefined; rel = queue.shift()) {
    const problem = checkModule(dir, rel, resolve, (target) => {
      if (!seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    });
    if (problem) return problem;
  }
  return undefined;
}

/**
 * `request` from the module `rel`, resolved in the new release: an app file as a relative path
 * (`isNew` says whether the update would evaluate it for the first time), anything else as an
 * absolute path or `node:` id; throws when nothing answers.
 */
export type Resolve = (rel: string, request: string) => { target: string; isNew: boolean };

function checkModule(dir: string, rel: string, resolve: Resolve, also: (rel: string) => void): string | undefined {
  const file = fromRel(dir, rel);
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  if (rel.endsWith('.json')) {
    try {
      JSON.parse(source);
      return undefined;
    } catch (err) {
      return `${rel}: ${(err as Error).name}: ${(err as Error).message}`;
    }
  }
  if (!/\.(?:c?js)$/.test(rel)) return undefined;
  try {
    // Node strips a shebang before compiling; a function body cannot hold one.
    vm.compileFunction(source.startsWith('#!') ? `//${source.slice(2)}` : source, WRAPPER_PARAMS, { filename: file });
  } catch (err) {
    return describeError(err, [dir]).message;
  }
  if (rel.split('/').includes('node_modules')) return undefined;
  for (const { request, line, column } of staticRequires(source)) {
    if (isBuiltin(request)) continue;
    try {
      const { target, isNew } = resolve(rel, request);
      // A module the update would load for the first time is checked as well.
      if (isNew) also(target);
    } catch {
      return `${rel}:${line}:${column}: Cannot find module '${request}'`;
    }
  }
  return undefined;
}
