import { execFile, spawn } from 'node:child_process';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { appShape, generateApp, type Files } from '../app-gen.js';
import { writeFiles } from '../bundle.js';
import { servingAt, type ReadAnswer } from '../poll.js';
import type { PushCommandApp, PushCommandFigure, PushVariantKey } from '../report.js';
import { freePort, type PlainAppFiles, type ReleaseAnswer, type Stack } from '../stack.js';
import { ratio, summarize } from '../stats.js';
import { settle } from '../settle.js';
import { tempDir } from '../tmp.js';
import { NPM_CACHE } from '../../test/generated/install.js';
import { dependencies, packageFiles } from './dependencies.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = path.join(ROOT, 'dist/services/cli/main.js');
const EXAMPLE = path.join(ROOT, 'examples/hello');
const EXPRESS = path.join(ROOT, 'test/fixtures/generated/express-app');
const MODULES = 200;
const WORKERS = 2;
const SERVE_TIMEOUT_MS = 60_000;
/** The order the variants run and print in. */
const KEYS: PushVariantKey[] = ['example', 'app', 'express', 'bundled-deps'];

/** One app as figure 9 pushes it, and the same app as an ordinary PM2 program. */
interface Variant {
  name: string;
  /** The app's folder as pushed first (marker `m-0`). */
  files: Files;
  /** The one file a change rewrites, to serve `marker`. */
  change(marker: string): Files;
  /** How the app's answer reads (the generated apps answer JSON). */
  read?: ReadAnswer;
  /** Throws unless the stored release is as the variant needs it (`first`: the app's first push). */
  check?(release: ReleaseAnswer, first: boolean): void;
  /** The same app as a plain PM2 program, serving marker `p-0` on `port`. */
  plain(name: string, port: number): PlainAppFiles;
}

/**
 * Figure 9: what the user waits for. `hotdeploy push <dir>` of a one-file change as a real child
 * process, from its spawn to every worker answering with the change, for four apps: the example app
 * (`examples/hello`, its greeting changed), the generated 200-module app, express-generator's app
 * (test/fixtures/generated/express-app) whose locked dependencies the service installs on the host
 * (`npm ci` offline from a filled cache on the first push, linked from the current release on every
 * later one), and the 200-module app with 3,200 dependency files bundled.
 * Each against today's push of the same change (`--npm-pack`: npm pack, the full bundle) and against
 * `npm pack` + upload + `pm2 reload` of the same app as an ordinary PM2 program, in the same run. The
 * CLI talks to the service through a counting TCP proxy: the bytes sent and received are the real
 * ones, HTTP included; a push of no change gives the fixed overhead (manifest exchange, headers,
 * the deployment's answer).
 */
export async function pushCommandFigure(stack: Stack, rounds: number, progress: (m: string) => void): Promise<PushCommandFigure> {
  const apps: PushCommandApp[] = [];
  for (const key of KEYS) {
    const { dir, cleanup } = await tempDir(`hd-bench-push-${key}-`);
    try {
      const port = await freePort();
      const app = `push-${key}`;
      const variant = await makeVariant(key, stack, app, port, dir);
      progress(`push command: ${variant.name}`);
      apps.push(await measureVariant(stack, key, variant, app, port, dir, rounds));
    } finally {
      await cleanup();
    }
  }
  return { rounds, apps };
}

async function makeVariant(key: PushVariantKey, stack: Stack, app: string, port: number, work: string): Promise<Variant> {
  switch (key) {
    case 'example':
      return exampleApp(port);
    case 'app':
      return generatedApp('', { app, port });
    case 'express':
      return expressApp(stack, port, work);
    case 'bundled-deps': {
      const bundled: Files = {};
      for (const name of Object.keys(dependencies())) {
        for (const [rel, body] of Object.entries(packageFiles(name))) bundled[`node_modules/${name}/${rel}`] = body;
      }
      return generatedApp(` + ${Object.keys(bundled).length} bundled dependency files`, {
        app, port, pkg: { dependencies: dependencies(), bundleDependencies: true }, extra: bundled,
      });
    }
  }
}

interface GeneratedOptions {
  app: string;
  port: number;
  /** What package.json adds. */
  pkg?: Record<string, unknown>;
  /** Files beside the generated ones (bundled node_modules). */
  extra?: Files;
}

/** The generated 200-module app (its marker leaf changes), with what `options` add. */
function generatedApp(suffix: string, options: GeneratedOptions): Variant {
  const leaf = appShape(MODULES).markerLeaf;
  const generate = (marker: string, name: string, port?: number): Files => {
    const files = generateApp({ modules: MODULES, marker, name, instances: WORKERS, ...(port === undefined ? {} : { port }) });
    const pkg = JSON.parse(files['package.json'] as string) as Record<string, unknown>;
    return { ...files, 'package.json': JSON.stringify({ ...pkg, ...options.pkg }, null, 2), ...options.extra };
  };
  const change = (marker: string): Files => ({ [leaf]: generateApp({ modules: MODULES, marker })[leaf] as string });
  return {
    name: `${MODULES}-module app${suffix}`,
    files: generate('m-0', options.app, options.port),
    change,
    plain: (name, port) => ({ files: generate('p-0', name, port), change }),
  };
}

/**
 * `examples/hello` as the README's quick start has it, on a free port: a change rewrites the
 * greeting in `greeting.js`, which every answer carries beside the worker's pid.
 */
async function exampleApp(port: number): Promise<Variant> {
  const original: Files = {};
  for (const name of await readdir(EXAMPLE)) original[name] = await readFile(path.join(EXAMPLE, name), 'utf8');
  const greeting = original['greeting.js'] ?? '';
  const pattern = /'Hello from hotdeploy [^']*'/;
  if (!pattern.test(greeting)) throw new Error(`${EXAMPLE}/greeting.js: no greeting to change`);
  const change = (marker: string): Files => ({ 'greeting.js': greeting.replace(pattern, `'Hello from hotdeploy ${marker}'`) });
  const pkg = JSON.parse(original['package.json'] ?? '{}') as { files: string[]; hotdeploy: Record<string, unknown> };
  const read: ReadAnswer = (body) => {
    const m = /^Hello from hotdeploy (\S+) \(served by pid (\d+)\)/.exec(body);
    if (!m) throw new Error(`not the example's answer: ${body.slice(0, 200)}`);
    return { marker: m[1] as string, pid: Number(m[2]) };
  };
  return {
    name: 'example app (examples/hello)',
    files: { ...original, ...change('m-0'), 'package.json': JSON.stringify({ ...pkg, hotdeploy: { ...pkg.hotdeploy, port } }, null, 2) },
    change,
    read,
    // As a plain program: PLAIN_SERVER (server.js) listens with the handler; npm pack takes it along.
    plain: (name) => ({
      files: { ...original, ...change('p-0'), 'package.json': JSON.stringify({ ...pkg, name, files: [...pkg.files, 'server.js'] }, null, 2) },
      change,
    }),
  };
}

/**
 * express-generator's app as generated (test/fixtures/generated/express-app: app.js, bin/www, routes,
 * views, public, its committed lockfile), `app.js` its entry. The service installs its dependencies
 * on the host: `npm ci` offline on the first push, linked from the current release on every later
 * one (both checked). Its home route in `routes/index.js` answers the marker and the worker's pid
 * through express; a change rewrites the marker in that file, so `app.js` is evaluated again with it.
 * As a plain PM2 program it runs as generated, `bin/www` listening on PORT, its node_modules installed
 * once beforehand.
 */
async function expressApp(stack: Stack, port: number, work: string): Promise<Variant> {
  const original = await readTree(EXPRESS);
  const route = original['routes/index.js'] ?? '';
  const home = "router.get('/', function(req, res, next) {\n  res.render('index', { title: 'Express' });\n});";
  if (!route.includes(home)) throw new Error(`${EXPRESS}/routes/index.js: no home route to replace`);
  const change = (marker: string): Files => ({
    'routes/index.js': route.replace(home, `router.get('/', (req, res) => res.json({ marker: ${JSON.stringify(marker)}, pid: process.pid }));`),
  });
  // The service's npm cache gets the locked packages (untimed): an install of a scratch copy through
  // the tests' npm cache (test/generated/install.ts; the registry only the first time), then that
  // cache copied in.
  const cache = path.join(stack.dataDir, 'npm', 'cache');
  const scratch = path.join(work, 'npm-fill');
  await writeFiles(scratch, original);
  await npmCi(scratch, ['--prefer-offline', '--cache', NPM_CACHE]);
  await cp(path.join(NPM_CACHE, '_cacache'), path.join(cache, '_cacache'), { recursive: true });
  const pkg = JSON.parse(original['package.json'] ?? '{}') as Record<string, unknown>;
  // The same folder both ways: the plain program's `npm pack` is uploaded to the service (stored), which checks the entry.
  const folder = (marker: string, at: number): Files => ({
    ...original, ...change(marker), 'package.json': JSON.stringify({ ...pkg, hotdeploy: { entry: 'app.js', port: at, instances: WORKERS } }, null, 2),
  });
  return {
    name: 'express-generator app, dependencies installed on the host',
    files: folder('m-0', port),
    change,
    check(release, first) {
      const how = first ? 'npm ci' : 'linked';
      if (release.install?.how !== how) throw new Error(`express app@${release.version}: node_modules not ${how}: ${JSON.stringify(release.install)}`);
    },
    plain: (_name, at) => ({
      files: folder('p-0', at),
      script: 'bin/www',
      change,
      prepare: (dir) => npmCi(dir, ['--offline', '--cache', cache]),
    }),
  };
}

/** `npm ci` of an app's production dependencies in `dir`, as a user installs them (no scripts). */
async function npmCi(dir: string, flags: string[]): Promise<void> {
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...flags], {
    cwd: dir, timeout: 240_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' },
  });
}

/** Every file under `root` but node_modules, as text, by its path relative to `root`. */
async function readTree(root: string): Promise<Files> {
  const files: Files = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    const rel = path.relative(root, file);
    if (entry.isFile() && !rel.split(path.sep).includes('node_modules')) files[rel] = await readFile(file, 'utf8');
  }
  return files;
}

async function measureVariant(stack: Stack, key: PushVariantKey, variant: Variant, app: string, port: number, work: string, rounds: number): Promise<PushCommandApp> {
  const dir = path.join(work, 'app');
  const proxy = await countingProxy(stack.serverPort);
  try {
    await writeFiles(dir, variant.files);
    const env = { ...process.env, HOTDEPLOY_SERVER: `http://127.0.0.1:${proxy.port}`, HOTDEPLOY_TOKEN: 'bench-admin-token-0123456789',
      HOTDEPLOY_CACHE_DIR: path.join(work, 'cli-cache') };
    const releases: ReleaseAnswer[] = [];
    let n = 0;
    const change = async (): Promise<{ version: string; marker: string; bytes: number }> => {
      n += 1;
      const marker = `m-${n}`;
      let bytes = 0;
      for (const [rel, body] of Object.entries(variant.change(marker))) {
        await writeFile(path.join(dir, rel), body);
        bytes += Buffer.byteLength(body);
      }
      return { version: `v${n}`, marker, bytes };
    };
    const cli = async (version: string, marker: string, flags: string[] = []): Promise<{ ms: number; firstByteMs: number; up: number; down: number }> => {
      await settle();
      proxy.reset();
      const t0 = performance.now();
      const code = await runCli(['push', dir, '--app', app, '--version', version, ...flags], env);
      if (code !== 0) throw new Error(`hotdeploy push ${flags.join(' ')} exited ${code}`);
      const { at } = await servingAt(port, marker, WORKERS, SERVE_TIMEOUT_MS, variant.read);
      const measured = { ms: at - t0, firstByteMs: (proxy.firstByteAt() ?? Number.NaN) - t0, up: proxy.up(), down: proxy.down() };
      const release = await stack.release(app, version);
      variant.check?.(release, version === 'v0');
      releases.push(release);
      return measured;
    };
    await cli('v0', 'm-0', ['--npm-pack']);
    // Warm: the CLI's cache of this folder's hashes and of the current release's manifest.
    const warm = await change();
    await cli(warm.version, warm.marker);
    const empty = await cli(`v${(n += 1)}`, warm.marker);
    const delta: number[] = [];
    const firstByte: number[] = [];
    const up: number[] = [];
    const down: number[] = [];
    const cliFull: number[] = [];
    let changed = 0;
    // The delta pushes one after another, as a developer's are: each finds its base's manifest in
    // the CLI's cache (a 304). A push --npm-pack between them would make every manifest exchange whole.
    for (let i = 0; i < rounds; i++) {
      const a = await change();
      const d = await cli(a.version, a.marker);
      delta.push(d.ms);
      firstByte.push(d.firstByteMs);
      up.push(d.up);
      down.push(d.down);
      changed = a.bytes;
    }
    for (let i = 0; i < rounds; i++) {
      const b = await change();
      cliFull.push((await cli(b.version, b.marker, ['--npm-pack'])).ms);
    }
    const packUploadReload = await npmPackUploadReload(stack, variant, `plain-${key}`, work, rounds);
    const median = (xs: number[]) => summarize(xs).median;
    const [first, ...later] = releases;
    const install = first?.install && { files: first.install.files, firstMs: first.install.ms, linkedStep: summarize(later.map((r) => r.install?.ms ?? Number.NaN)) };
    return {
      key, app: variant.name, files: Object.keys(variant.files).length, changedFileBytes: changed,
      delta: summarize(delta), firstByte: summarize(firstByte), cliFull: summarize(cliFull), packUploadReload: summarize(packUploadReload),
      bytesUp: median(up), bytesDown: median(down), overheadUp: empty.up, overheadDown: empty.down,
      vsCliFull: ratio(median(cliFull), median(delta)), vsPackUploadReload: ratio(median(packUploadReload), median(delta)),
      ...(install ? { install } : {}),
    };
  } finally {
    proxy.close();
  }
}

/**
 * The alternative without hotdeploy's push: `npm pack` of the app's folder (a child process), the
 * .tgz (in `work`) uploaded to the service (stored, not activated: the copy step), then the changed file in
 * place and `pm2 reload` of the same app as an ordinary PM2 program, until both new workers answer.
 */
async function npmPackUploadReload(stack: Stack, variant: Variant, name: string, work: string, rounds: number): Promise<number[]> {
  const port = await freePort();
  const plain = await stack.startPlainApp(name, port, variant.plain(name, port));
  try {
    await servingAt(port, 'p-0', WORKERS, SERVE_TIMEOUT_MS, variant.read);
    const pkg = JSON.parse(await readFile(path.join(plain.dir, 'package.json'), 'utf8')) as { name: string; version: string };
    const file = path.join(work, `${pkg.name}-${pkg.version}.tgz`);
    const out: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      const marker = `p-${i}`;
      await settle();
      const t0 = performance.now();
      await plain.change(marker);
      const packed = await runProcess('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', path.dirname(file)], plain.dir);
      if (packed !== 0) throw new Error(`npm pack exited ${packed}`);
      await stack.upload(name, `v${i}`, { file, bytes: (await stat(file)).size }, '?activate=false');
      await plain.reload();
      const { at } = await servingAt(port, marker, WORKERS, SERVE_TIMEOUT_MS, variant.read);
      out.push(at - t0);
    }
    return out;
  } finally {
    plain.close();
  }
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`push exited ${code}: ${err.slice(-500)}`))));
  });
}

function runProcess(command: string, args: string[], cwd: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: 'ignore', env: { ...process.env, npm_config_loglevel: 'error' } });
    child.once('error', reject);
    child.once('exit', resolve);
  });
}

/** A TCP proxy to the service that counts the bytes each way and notes when the first byte from a client arrived. */
async function countingProxy(target: number): Promise<{ port: number; up(): number; down(): number; firstByteAt(): number | undefined; reset(): void; close(): void }> {
  let up = 0;
  let down = 0;
  let first: number | undefined;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    client.on('data', (chunk) => {
      first ??= performance.now();
      up += chunk.length;
    });
    upstream.on('data', (chunk) => (down += chunk.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    up: () => up, down: () => down, firstByteAt: () => first,
    reset() {
      up = 0;
      down = 0;
      first = undefined;
    },
    close: () => server.close(),
  };
}
