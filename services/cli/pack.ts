import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { childProcess, fs, util } from './builtins.js';
import { CliError } from './errors.js';
import { addToTarball, lockfileToAdd } from './lockfile.js';
import { formatBytes } from './output.js';

/** `execFile` as a promise of its output as text; child_process loads on the first call. */
function execFileAsync(file: string, args: string[], options: { cwd: string; maxBuffer?: number; env?: NodeJS.ProcessEnv }): Promise<{ stdout: string; stderr: string }> {
  return util.promisify(childProcess().execFile)(file, args, { ...options, encoding: 'utf8' });
}

/** A bundle ready to upload: a .tgz on disk, its size and sha256, and what its package.json says. */
export interface Bundle {
  file: string;
  size: number;
  sha256: string;
  /** package.json's version (undefined when it has none). */
  packageVersion: string | undefined;
  /** The lockfile added to what `npm pack` packed (it leaves lockfiles out), so the service can install. */
  lockfile?: string;
  /** Removes the temporary tarball made from a directory (no-op for a given .tgz). */
  cleanup(): Promise<void>;
}

/** A directory is packed by `npm pack` (`push --npm-pack`, `plan`); a file is taken as the .tgz it should be. */
export async function prepareBundle(source: string): Promise<Bundle> {
  const info = await stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new CliError('CLI_ERR_SOURCE', `${source} (${err.code ?? err.message})`);
  });
  if (info.isDirectory()) return packDirectory(source);
  if (!info.isFile()) throw new CliError('CLI_ERR_SOURCE', `${source} is neither a directory nor a .tgz file`);
  const sha256 = await sha256Of(source);
  return { file: source, size: info.size, sha256, packageVersion: await versionInTarball(source), cleanup: async () => {} };
}

/**
 * Packs with npm itself (`npm pack --ignore-scripts`), so the bundle holds exactly what `npm pack`
 * would publish: `files`, `.npmignore` / `.gitignore`, and npm's always-excluded files (`.git`,
 * `node_modules` unless bundled, `npm-debug.log`, ...). A plain `push <dir>` lists the same files
 * in-process instead (packlist.ts). Scripts are not run: building is the CI's step before push.
 * The lockfile, which `npm pack` always leaves out, is added (lockfile.ts).
 */
async function packDirectory(dir: string): Promise<Bundle> {
  // Checked here for a one-line answer (npm's own is a multi-line ENOENT) that names the fix.
  if (!(await stat(path.join(dir, 'package.json')).catch(() => undefined))?.isFile()) {
    throw new CliError('CLI_ERR_SOURCE', `${dir} has no package.json (push the app's own directory, or a .tgz)`);
  }
  const dest = await mkdtemp(path.join(os.tmpdir(), 'hotdeploy-pack-'));
  const cleanup = () => rm(dest, { recursive: true, force: true });
  try {
    const { stdout } = await execFileAsync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest],
      { cwd: dir, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_loglevel: 'error' } })
      .catch((err: NodeJS.ErrnoException & { stdout?: string; stderr?: string }) => {
        throw new CliError('CLI_ERR_PACK', `${dir}: ${npmFailure(err)}`, { cause: err });
      });
    const [result] = JSON.parse(stdout) as Array<{ filename: string; version?: string; files?: Array<{ path: string }> }>;
    if (!result) throw new CliError('CLI_ERR_PACK', `${dir}: npm pack reported no tarball`);
    const file = path.join(dest, path.basename(result.filename));
    const lockfile = lockfileToAdd(dir, (result.files ?? []).map((f) => f.path));
    if (lockfile) await addToTarball(file, dir, lockfile);
    const { size } = await stat(file);
    return { file, size, sha256: await sha256Of(file), packageVersion: result.version, ...(lockfile ? { lockfile } : {}), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function npmFailure(err: NodeJS.ErrnoException & { stdout?: string; stderr?: string }): string {
  if (err.code === 'ENOENT') return 'npm is not on PATH; run `npm pack` yourself and push the .tgz';
  // npm --json reports `{ "error": { "summary" } }` on stdout; stderr has the same as `npm error` lines.
  try {
    const parsed = JSON.parse(err.stdout ?? '') as { error?: { summary?: string } };
    if (parsed.error?.summary) return parsed.error.summary;
  } catch {
    // not JSON: fall through to stderr
  }
  const line = (err.stderr ?? '').split('\n').find((l) => l.startsWith('npm error'));
  return line?.replace(/^npm error\s*/, '') ?? err.message.split('\n')[0] ?? 'unknown failure';
}

/** What a note about the upload says of the bundle: size, sha256's start, the lockfile added. */
export function describeBundle(bundle: Bundle): string {
  return `${formatBytes(bundle.size)}, sha256 ${bundle.sha256.slice(0, 12)}${bundle.lockfile ? `, with ${bundle.lockfile}` : ''}`;
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** package.json's version inside a .tgz (at the root or under one top-level folder such as `package/`). */
async function versionInTarball(file: string): Promise<string | undefined> {
  let text: string | undefined;
  const tar = await import('tar');
  try {
    await tar.t({
      file,
      filter: (entryPath) => /^(\.\/)?([^/]+\/)?package\.json$/.test(entryPath),
      onReadEntry: (entry) => {
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => chunks.push(chunk));
        entry.on('end', () => {
          if (text === undefined || !entry.path.includes('/')) text = Buffer.concat(chunks).toString('utf8');
        });
      },
    });
  } catch {
    // Not a readable tarball: the server gives the authoritative error (DEPLOY_ERR_*) on upload.
    return undefined;
  }
  try {
    const version = (JSON.parse(text ?? '') as { version?: unknown }).version;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `--version git`: the commit being deployed. CI checkouts may be detached or shallow, so the CI's own
 * variables come first (GitHub Actions' GITHUB_SHA, GitLab's CI_COMMIT_SHORT_SHA), then git itself.
 */
export async function gitVersion(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.CI_COMMIT_SHORT_SHA) return env.CI_COMMIT_SHORT_SHA;
  if (env.GITHUB_SHA) return env.GITHUB_SHA.slice(0, 7);
  try {
    const { stdout } = await execFileAsync('git', ['rev-parse', '--short', 'HEAD'], { cwd });
    return stdout.trim();
  } catch (err) {
    throw new CliError('CLI_ERR_VERSION', `--version git: ${cwd} is not in a git checkout with a commit`, { cause: err });
  }
}

/** The version to push: the flag, `git`, or package.json's version. */
export async function resolveVersion(flag: string | undefined, source: string, bundle: Bundle): Promise<string> {
  if (flag === 'git') {
    const info = await stat(source);
    return gitVersion(info.isDirectory() ? source : path.dirname(source));
  }
  if (flag) return flag;
  if (bundle.packageVersion) return bundle.packageVersion;
  throw new CliError('CLI_ERR_VERSION', `${source} has no package.json version; pass --version V (or --version git)`);
}

/** package.json's `name` in a directory, for `serve --example`. */
export async function packageName(dir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
  if (typeof pkg.name !== 'string') throw new CliError('CLI_ERR_SOURCE', `${dir}/package.json has no name`);
  return pkg.name;
}
