/**
 * Generated CommonJS apps for the figures: `modules` modules in a binary tree under `index.js`
 * (module i requires 2i+1 and 2i+2), so a change to the deepest leftmost leaf bubbles through
 * ~log2(n) modules to the entry; plus `lib/hot-leaf.js`, which accepts its own updates.
 */

export type Files = Record<string, string>;

export interface AppShape {
  modules: number;
  /** The deepest leftmost leaf; its `marker` travels up to every response. */
  markerLeaf: string;
  hotLeaf: string;
  /** Modules from the marker leaf up to and including the entry. */
  chainLength: number;
}

export interface AppOptions {
  modules: number;
  /** Shows in every response: change it to change exactly one module (the marker leaf). */
  marker: string;
  /** The self-accepted leaf's value: change it for a leaf update. */
  hot?: string;
  port?: number;
  instances?: number;
  name?: string;
  /** The same app as ES modules (`"type": "module"`, `import`, `import.meta.hot`). */
  esm?: boolean;
}

export function appShape(modules: number): AppShape {
  const count = treeSize(modules);
  let leaf = 0;
  let chain = 2;
  while (2 * leaf + 1 < count) {
    leaf = 2 * leaf + 1;
    chain += 1;
  }
  return { modules, markerLeaf: `lib/m${leaf}.js`, hotLeaf: 'lib/hot-leaf.js', chainLength: chain };
}

function treeSize(modules: number): number {
  if (!Number.isInteger(modules) || modules < 3) throw new RangeError('an app has at least 3 modules');
  return modules - 2;
}

export function generateApp(options: AppOptions): Files {
  const count = treeSize(options.modules);
  const shape = appShape(options.modules);
  const esm = options.esm ?? false;
  const hot = JSON.stringify(options.hot ?? 'hot-0');
  const files: Files = {
    'package.json': JSON.stringify({
      name: options.name ?? 'bench-app', version: '1.0.0', main: 'index.js', ...(esm ? { type: 'module' } : {}),
      hotdeploy: { ...(options.port === undefined ? {} : { port: options.port }), instances: options.instances ?? 2 },
    }, null, 2),
    'index.js': esm ? ENTRY_ESM : ENTRY,
    [shape.hotLeaf]: esm
      ? `import.meta.hot?.accept();\nexport const value = ${hot};\n`
      : `'use strict';\nif (module.hot) module.hot.accept();\nexports.value = ${hot};\n`,
  };
  for (let i = 0; i < count; i++) {
    const rel = `lib/m${i}.js`;
    const module = treeModule(i, count, rel === shape.markerLeaf ? options.marker : undefined);
    files[rel] = esm ? asEsm(module) : module;
  }
  return files;
}

/** A generated tree module as an ES module: the same code, its requires as imports. */
function asEsm(source: string): string {
  return source
    .replace("'use strict';\n", '')
    .replace(/const (left|right) = require\('(\.\/m\d+\.js)'\);/g, "import * as $1 from '$2';")
    .replace(/exports\.(\w+) = /g, 'export const $1 = ')
    .replace('export const describe = describe;', 'export { describe };');
}

const ENTRY_ESM = `import * as root from './lib/m0.js';
import * as hot from './lib/hot-leaf.js';

export default (req, res) => {
  const body = JSON.stringify({ marker: root.marker, hot: hot.value, pid: process.pid, score: root.work(2) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
`;

const ENTRY = `'use strict';
const root = require('./lib/m0.js');
const hot = require('./lib/hot-leaf.js');

module.exports = (req, res) => {
  const body = JSON.stringify({ marker: root.marker, hot: hot.value, pid: process.pid, score: root.work(2) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
`;

/** A module of ordinary size (~1 KB) with a little real work, so evaluation is not free. */
function treeModule(i: number, count: number, marker: string | undefined): string {
  const left = 2 * i + 1 < count ? `require('./m${2 * i + 1}.js')` : 'null';
  const right = 2 * i + 2 < count ? `require('./m${2 * i + 2}.js')` : 'null';
  const own = marker ?? `leaf-${i}`;
  return `'use strict';
// Generated module ${i} of ${count}.
const left = ${left};
const right = ${right};

const TABLE = Object.freeze({
  id: ${i},
  name: 'module-${i}',
  weights: [${i % 7}, ${i % 11}, ${i % 13}],
  labels: ['alpha-${i}', 'beta-${i}', 'gamma-${i}'],
});

function score(n) {
  let s = TABLE.id;
  for (let k = 0; k < n; k++) s = (s * 31 + TABLE.weights[k % 3]) % 1000003;
  return s;
}

function describe() {
  return TABLE.labels.map((label, k) => label + ':' + TABLE.weights[k]).join(',');
}

exports.marker = left ? left.marker : ${JSON.stringify(own)};
exports.describe = describe;
exports.work = (n) => score(n) + (left ? left.work(n) : 0) + (right ? right.work(n) : 0);
`;
}

/** The same app as an ordinary PM2 program (what `pm2 reload` restarts): it listens itself. */
export const PLAIN_SERVER = `'use strict';
const http = require('http');
const server = http.createServer(require('./index.js'));
// PM2's graceful start and stop (its docs' recipe): 'ready' once listening, close on SIGINT.
server.listen(Number(process.env.PORT), () => { if (process.send) process.send('ready'); });
process.on('SIGINT', () => server.close(() => process.exit(0)));
`;

/**
 * Figure 5's app: a handler-mode app whose `lib/big.js` holds a large array, version-tagged, and
 * ~100 KB of source (400 small functions): what a runtime or Node keeps of each version's source
 * or compiled code shows at that size too.
 */
export function memoryApp(version: string, items: number): Files {
  const functions = Array.from({ length: 400 }, (_, n) => `function f${n}(x) { return VERSION + ':' + (x * ${n} + ${n % 7}).toString(36) + '-${'k'.repeat(150)}'; }`).join('\n');
  return {
    'package.json': JSON.stringify({ name: 'bench-memory', version: '1.0.0', main: 'index.js' }),
    'index.js': `'use strict';\nconst big = require('./lib/big.js');\nconst util = require('./lib/util.js');\nmodule.exports = (req, res) => res.end(util.label(big.data.length));\n`,
    'lib/util.js': `'use strict';\nexports.label = (n) => 'items:' + n;\n`,
    'lib/big.js': `'use strict';\nconst VERSION = ${JSON.stringify(version)};\n${functions}\nexports.data = Array.from({ length: ${items} }, (_, i) => VERSION + ':item-' + i);\nexports.first = f0;\nexports.last = f399;\n`,
  };
}
