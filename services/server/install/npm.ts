import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { DeployError } from '../errors.js';

/** How the service runs npm: its own folder in the data directory, the operator's npmrc, a deadline. */
export interface NpmSettings {
  /** `<dataDir>/npm`: npm's cache (`cache/`), HOME (`home/`) and the empty default npmrc files. */
  dir: string;
  /** `serve --npmrc FILE`: registry, scoped registries and their tokens, proxy, cafile. */
  npmrc: string | undefined;
  timeoutMs: number;
}

/** Lines of npm's output kept for the answer of a failed install. */
const TAIL_LINES = 20;

/**
 * npm's whole environment: nothing of the service's own (its tokens, NATS credentials, anything an
 * operator exported) reaches npm or an install script. PATH starts with the service's own Node, so
 * npm and any script build for the Node the workers run; HOME and npm's cache live in the data
 * directory; npm's settings come only from the operator's npmrc (the user config) and an empty
 * global config, never from the machine's.
 */
export function npmEnvironment(settings: NpmSettings): NodeJS.ProcessEnv {
  return {
    PATH: [path.dirname(process.execPath), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(path.delimiter),
    HOME: path.join(settings.dir, 'home'),
    LANG: process.env.LANG ?? 'C.UTF-8',
    npm_config_cache: npmCacheDir(settings.dir),
    npm_config_userconfig: settings.npmrc ?? path.join(settings.dir, 'npmrc'),
    npm_config_globalconfig: path.join(settings.dir, 'global-npmrc'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

/** Where npm keeps its cache: `<dataDir>/npm/cache` (tests fill it with `npm cache add`). */
export function npmCacheDir(npmDir: string): string {
  return path.join(npmDir, 'cache');
}

/** The folders and empty npmrc files npm's environment names. */
export async function prepareNpmDir(settings: NpmSettings): Promise<void> {
  await mkdir(path.join(settings.dir, 'home'), { recursive: true, mode: 0o700 });
  await mkdir(npmCacheDir(settings.dir), { recursive: true });
  for (const file of ['npmrc', 'global-npmrc']) await writeFile(path.join(settings.dir, file), '', { flag: 'a' });
}

/**
 * Runs `npm <args>` in `cwd` with npm's environment and the deadline; resolves with its stdout.
 * Fails with DEPLOY_ERR_INSTALL and npm's last lines; on the deadline the whole process group
 * (npm and any script it started) is killed.
 */
export function runNpm(args: string[], cwd: string, settings: NpmSettings): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env: npmEnvironment(settings), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    const keep = (chunk: Buffer, isStdout: boolean): void => {
      const text = chunk.toString();
      if (isStdout) stdout += text;
      output = (output + text).slice(-16_384);
    };
    child.stdout.on('data', (chunk: Buffer) => keep(chunk, true));
    child.stderr.on('data', (chunk: Buffer) => keep(chunk, false));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, settings.timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new DeployError('DEPLOY_ERR_INSTALL', err.code === 'ENOENT' ? 'npm is not on the service\'s PATH' : `npm could not run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const what = timedOut ? `npm ${args[0]} did not finish within ${settings.timeoutMs} ms` : `npm ${args[0]} exited with ${code ?? signal}`;
      reject(new DeployError('DEPLOY_ERR_INSTALL', `${what}:\n${tail(output)}`));
    });
  });
}

function tail(output: string): string {
  return stripVTControlCharacters(output).split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-TAIL_LINES).join('\n');
}

let version: Promise<string> | undefined;

/** `npm --version`, asked once per process (it is part of the install key). */
export function npmVersion(settings: NpmSettings): Promise<string> {
  version ??= runNpm(['--version'], settings.dir, settings).then((out) => out.trim());
  version.catch(() => { version = undefined; });
  return version;
}
