import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appShape, generateApp, type Files } from '../app-gen.js';
import { writeFiles } from '../bundle.js';
import { servingAt } from '../poll.js';
import type { PushCommandApp, PushCommandFigure } from '../report.js';
import { freePort, type Stack } from '../stack.js';
import { ratio, summarize } from '../stats.js';
import { settle } from '../settle.js';
import { tempDir } from '../tmp.js';
import { packageFiles, pkgName } from './dependencies.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../services/cli/main.js');
const MODULES = 200;
const WORKERS = 2;
const SERVE_TIMEOUT_MS = 60_000;
/** 100 packages of 32 files: 3,200 bundled dependency files, as figure 8's tree is shaped. */
const BUNDLED_PACKAGES = 100;

interface Variant {
  name: string;
  /** Files beside the generated app (its bundled node_modules), and what package.json adds for them. */
  extra: Files;
  bundled: boolean;
}

/**
 * Figure 9: what the user waits for. `hotdeploy push <dir>` of a one-file change as a real child
 * process, from its spawn to every worker answering with the change, for the 200-module app and the
 * same app with 3,200 bundled dependency files; against today's push of the same change
 * (`--npm-pack`: npm pack, the full bundle) and against `npm pack` + upload + `pm2 reload` of the
 * same app as an ordinary PM2 program, in the same run. The CLI talks to the service through a
 * counting TCP proxy: the bytes sent and received are the real ones, HTTP included; a push of no
 * change gives the fixed overhead (manifest exchange, headers, the deployment's answer).
 */
export async function pushCommandFigure(stack: Stack, rounds: number, progress: (m: string) => void): Promise<PushCommandFigure> {
  const dependencies = Object.fromEntries(Array.from({ length: BUNDLED_PACKAGES }, (_, i) => [pkgName(i), '1.0.0']));
  const deps: Files = {};
  for (let i = 0; i < BUNDLED_PACKAGES; i++) {
    for (const [rel, body] of Object.entries(packageFiles(pkgName(i)))) deps[`node_modules/${pkgName(i)}/${rel}`] = body;
  }
  const variants: Variant[] = [
    { name: `${MODULES}-module app`, extra: {}, bundled: false },
    { name: `${MODULES}-module app + ${Object.keys(deps).length} bundled dependency files`, extra: { ...deps, __deps: JSON.stringify(dependencies) }, bundled: true },
  ];
  const apps: PushCommandApp[] = [];
  for (const [index, variant] of variants.entries()) {
    progress(`push command: ${variant.name}`);
    apps.push(await measureVariant(stack, variant, `push${index}`, rounds));
  }
  return { rounds, apps };
}

async function measureVariant(stack: Stack, variant: Variant, app: string, rounds: number): Promise<PushCommandApp> {
  const { dir, cleanup } = await tempDir('hd-bench-push-');
  const proxy = await countingProxy(stack.serverPort);
  try {
    const port = await freePort();
    const { __deps, ...extra } = variant.extra;
    const files = (marker: string): Files => withBundled(generateApp({ modules: MODULES, marker, port, instances: WORKERS, name: app }), __deps);
    await writeFiles(dir, { ...files('m-0'), ...extra });
    const env = { ...process.env, HOTDEPLOY_SERVER: `http://127.0.0.1:${proxy.port}`, HOTDEPLOY_TOKEN: 'bench-admin-token-0123456789',
      HOTDEPLOY_CACHE_DIR: path.join(dir, '..', `${path.basename(dir)}-cache`) };
    const leaf = appShape(MODULES).markerLeaf;
    let n = 0;
    const change = async (): Promise<{ version: string; marker: string; bytes: number }> => {
      n += 1;
      const marker = `m-${n}`;
      const body = files(marker)[leaf] as string;
      await writeFile(path.join(dir, leaf), body);
      return { version: `v${n}`, marker, bytes: Buffer.byteLength(body) };
    };
    const cli = async (version: string, marker: string, flags: string[] = []): Promise<{ ms: number; firstByteMs: number; up: number; down: number }> => {
      await settle();
      proxy.reset();
      const t0 = performance.now();
      const code = await runCli(['push', dir, '--app', app, '--version', version, ...flags], env);
      if (code !== 0) throw new Error(`hotdeploy push ${flags.join(' ')} exited ${code}`);
      const { at } = await servingAt(port, marker, WORKERS, SERVE_TIMEOUT_MS);
      return { ms: at - t0, firstByteMs: (proxy.firstByteAt() ?? Number.NaN) - t0, up: proxy.up(), down: proxy.down() };
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
    const packUploadReload = await npmPackUploadReload(stack, variant, extra, __deps, rounds);
    const median = (xs: number[]) => summarize(xs).median;
    return {
      app: variant.name, files: Object.keys(files('x')).length + Object.keys(extra).length, changedFileBytes: changed,
      delta: summarize(delta), firstByte: summarize(firstByte), cliFull: summarize(cliFull), packUploadReload: summarize(packUploadReload),
      bytesUp: median(up), bytesDown: median(down), overheadUp: empty.up, overheadDown: empty.down,
      vsCliFull: ratio(median(cliFull), median(delta)), vsPackUploadReload: ratio(median(packUploadReload), median(delta)),
    };
  } finally {
    proxy.close();
    await cleanup();
  }
}

/**
 * The alternative without hotdeploy's push: `npm pack` of the app's folder (a child process), the
 * .tgz uploaded to the service (stored, not activated: the copy step), then the changed file in
 * place and `pm2 reload` of the same app as an ordinary PM2 program, until both new workers answer.
 */
async function npmPackUploadReload(stack: Stack, variant: Variant, extra: Files, deps: string | undefined, rounds: number): Promise<number[]> {
  const port = await freePort();
  const name = `plain-${variant.bundled ? 'bundled' : 'app'}`;
  const plain = await stack.startPlain(name, MODULES, port, 'p-0');
  try {
    await writeFiles(plain.dir, { ...extra, 'package.json': withBundled(generateApp({ modules: MODULES, marker: 'p-0', port, name }), deps)['package.json'] as string });
    await servingAt(port, 'p-0', WORKERS, SERVE_TIMEOUT_MS);
    const out: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      const marker = `p-${i}`;
      await settle();
      const t0 = performance.now();
      await plain.change(marker);
      const tgz = path.join(plain.dir, '..', `${name}-${i}.tgz`);
      const packed = await runProcess('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', path.dirname(tgz)], plain.dir);
      if (packed !== 0) throw new Error(`npm pack exited ${packed}`);
      const file = path.join(path.dirname(tgz), `${name}-1.0.0.tgz`);
      const { stat } = await import('node:fs/promises');
      await stack.upload(name, `v${i}`, { file, bytes: (await stat(file)).size }, '?activate=false');
      await plain.reload();
      const { at } = await servingAt(port, marker, WORKERS, SERVE_TIMEOUT_MS);
      out.push(at - t0);
    }
    return out;
  } finally {
    plain.close();
  }
}

/** package.json with every generated package as a bundled dependency, when `deps` names them. */
function withBundled(files: Files, deps: string | undefined): Files {
  if (deps === undefined) return files;
  const pkg = JSON.parse(files['package.json'] as string) as Record<string, unknown>;
  return { ...files, 'package.json': JSON.stringify({ ...pkg, dependencies: JSON.parse(deps), bundleDependencies: true }, null, 2) };
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

