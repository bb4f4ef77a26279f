import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { appStatus, push, startHotdeploy, type Hotdeploy } from '../helpers/hotdeploy.js';

// The prune trap of an express-generator app: app.js reads views/ and public/ through __dirname, and
// with the README's accept pattern app.js stays loaded from its first release. After more than
// `keep` (10) route-only deploys that release is past retention; the workers say they still use it.

const NODE_MODULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules');
const WORKERS = 2;

let hd: Hotdeploy;
let port: number;

const APP_JS = `const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const app = express();
// A two-line view engine (express-generator's ejs reads its files the same way: through 'views').
app.engine('html', (file, options, callback) =>
  fs.readFile(file, 'utf8', (err, text) => callback(err, text && text.replace('{{title}}', options.title))));
app.set('views', path.join(__dirname, 'views'));
app.set('view engine', 'html');
app.use(express.static(path.join(__dirname, 'public')));
let indexRouter = require('./routes/index');
let usersRouter = require('./routes/users');
app.use('/', (req, res, next) => indexRouter(req, res, next));
app.use('/users', (req, res, next) => usersRouter(req, res, next));
if (module.hot) {
  module.hot.accept(['./routes/index', './routes/users'], () => {
    indexRouter = require('./routes/index');
    usersRouter = require('./routes/users');
  });
}
module.exports = app;
`;

function generatorApp(version: string): Record<string, string | object> {
  return {
    // No main (express-generator has none): the entry and the port are the app's two settings.
    'package.json': { name: 'gen', version, private: true, hotdeploy: { entry: 'app.js', port, instances: WORKERS, env: { NODE_PATH: NODE_MODULES } } },
    'app.js': APP_JS,
    'routes/index.js': `const router = require('express').Router();
router.get('/', (req, res) => res.render('index', { title: ${JSON.stringify(`gen ${version}`)} }));
module.exports = router;
`,
    'routes/users.js': `const router = require('express').Router();
router.get('/', (req, res) => res.render('users', { title: 'users' }));
module.exports = router;
`,
    'views/index.html': '<link rel="stylesheet" href="/stylesheets/style.css"><h1>{{title}}</h1>\n',
    'views/users.html': '<h1>{{title}}</h1>\n',
    'public/stylesheets/style.css': 'body { padding: 50px; }\n',
  };
}

async function page(pathname: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${pathname}: ${res.status} ${text}`);
  return text;
}

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
});

afterAll(async () => {
  await hd?.close();
});

it('12 route-only deploys with keep 10: the first release stays, every page and asset still serves', async () => {
  const first = await push(hd, 'gen', '1.0.0', generatorApp('1.0.0'));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
  for (let n = 1; n <= 12; n++) {
    const { deployment } = await push(hd, 'gen', `1.0.${n}`, generatorApp(`1.0.${n}`));
    expect(deployment.status, deployment.reason).toBe('succeeded');
    expect(deployment.workers.map((w) => w.outcome)).toEqual(Array(WORKERS).fill('hot'));
    expect(deployment.workers[0]?.update?.accepted).toEqual(['app.js']);
  }
  // Every connection may land on either worker: ask each path several times.
  for (let i = 0; i < 2 * WORKERS; i++) {
    expect(await page('/')).toContain('<h1>gen 1.0.12</h1>');
    expect(await page('/users')).toContain('<h1>users</h1>');
    expect(await page('/stylesheets/style.css')).toContain('padding: 50px');
  }
  // Retention follows each deployment's answer; the app's status waits for the last one.
  await appStatus(hd, 'gen');
  const releases = (await readdir(path.join(hd.dataDir, 'apps', 'gen', 'releases'))).sort();
  // The newest 10, and 1.0.0 (app.js's __dirname); 1.0.1 and 1.0.2 went.
  expect(releases).toHaveLength(11);
  expect(releases).toContain('1.0.0');
  expect(releases).not.toContain('1.0.1');
  expect(releases).not.toContain('1.0.2');
});
