import { describe, it } from 'vitest';
import { esmHotSupported } from '../../agent/runtime/esm-hooks.js';

/**
 * One app written as CommonJS (`require`, `module.exports`, `module.hot`) or as ES modules
 * (`import`, `export default`, `import.meta.hot`), so that a conformance case runs for both.
 * Fixtures use what the two hot APIs share: `accept()`, `accept(dep, cb)`, `dispose(cb)` with
 * `hot.data`, `decline()`, `invalidate()`, `retire(cb)`. Specifiers name files (`./x.js`), as ES
 * modules must.
 */
export interface Flavour {
  readonly name: 'cjs' | 'esm';
  /** Why this flavour's cases do not run on this Node line, if they do not. */
  readonly skip: string | undefined;
  /** `module.hot` or `import.meta.hot`. */
  readonly hot: string;
  /** `__dirname` or `import.meta.dirname`: the module's directory. */
  readonly dirname: string;
  /** The app's package.json (`"type": "module"` for ES modules), with `extra` merged in. */
  pkg(extra?: object): object;
  /** Binds `name` (with `let`: an accept callback may rebind it) to `spec`'s default export. */
  use(name: string, spec: string): string;
  /** Evaluates `spec` for its effects. */
  load(spec: string): string;
  /** Accepts updates of `spec`; the callback rebinds `name` to the new version's default export, then runs `then`. */
  acceptUse(name: string, spec: string, then?: string): string;
  /** The module's default export. */
  exportDefault(expr: string): string;
  /** A named export. */
  exportNamed(name: string, expr: string): string;
}

export const CJS: Flavour = {
  name: 'cjs',
  skip: undefined,
  hot: 'module.hot',
  dirname: '__dirname',
  pkg: (extra = {}) => ({ name: 'app', version: '1.0.0', main: 'index.js', ...extra }),
  use: (name, spec) => `let ${name} = require(${JSON.stringify(spec)});`,
  load: (spec) => `require(${JSON.stringify(spec)});`,
  acceptUse: (name, spec, then = '') =>
    `module.hot.accept(${JSON.stringify(spec)}, () => { ${name} = require(${JSON.stringify(spec)}); ${then} });`,
  exportDefault: (expr) => `module.exports = ${expr};`,
  exportNamed: (name, expr) => `exports.${name} = ${expr};`,
};

export const ESM: Flavour = {
  name: 'esm',
  skip: esmHotSupported ? undefined : `ES module cases skipped: Node ${process.version} has no module.registerHooks (ES module apps take the reload path)`,
  hot: 'import.meta.hot',
  dirname: 'import.meta.dirname',
  pkg: (extra = {}) => ({ name: 'app', version: '1.0.0', main: 'index.js', type: 'module', ...extra }),
  use: (name, spec) => `import ${name}$first from ${JSON.stringify(spec)};\nlet ${name} = ${name}$first;`,
  load: (spec) => `import ${JSON.stringify(spec)};`,
  acceptUse: (name, spec, then = '') =>
    `import.meta.hot.accept(${JSON.stringify(spec)}, (next) => { ${name} = next.default; ${then} });`,
  exportDefault: (expr) => `export default ${expr};`,
  exportNamed: (name, expr) => `export const ${name} = ${expr};`,
};

export const FLAVOURS: readonly Flavour[] = [CJS, ESM];

/**
 * The cases, once per flavour. Where the Node line cannot hot-swap ES modules, the ES module
 * block holds one skipped case named after the reason, and the reason is printed.
 */
export function eachFlavour(name: string, cases: (flavour: Flavour) => void): void {
  for (const flavour of FLAVOURS) {
    describe(`${name} (${flavour.name})`, () => {
      if (flavour.skip === undefined) return cases(flavour);
      console.info(flavour.skip);
      it.skip(flavour.skip, () => undefined);
    });
  }
}
