import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { isBaseName } from './environment.js';
import { stateDir } from './state.js';

const require = createRequire(import.meta.url);

/** Set in the environment of every PM2 daemon hotdeploy starts (and so of its apps). */
export const DAEMON_MARK = 'HOTDEPLOY_PM2_DAEMON';

/** What PM2's daemon itself needs beside the base: its home, quiet output, hotdeploy's mark. */
const DAEMON_NAMES = new Set(['PM2_HOME', 'SILENT', DAEMON_MARK]);

/** The whole environment of a daemon hotdeploy starts for `home`: the clean base, nothing else. */
export function daemonEnv(home: string, base: Record<string, string>): Record<string, string> {
  return { ...base, PM2_HOME: home, SILENT: 'true', [DAEMON_MARK]: '1' };
}

/** Daemons being started by this process, by home: two clients of one home must not start two. */
const launching = new Map<string, Promise<void>>();

/**
 * Starts PM2's daemon for `home` with exactly `env`, the way PM2's client does
 * (`Client.launchDaemon` in pm2/lib/Client.js: `lib/Daemon.js` detached, its output to `pm2.log`,
 * ready once it sends `{ online: true }`), except that PM2's client gives the daemon its own
 * `process.env`. Called by PM2's `connect` in place of its own launcher, only when no daemon
 * answered its ping; a daemon that another client of this process is starting is used instead of
 * a second one.
 */
export function spawnDaemon(home: string, logFile: string, env: Record<string, string>, done: (err: Error | null, child?: ChildProcess) => void): void {
  const pending = launching.get(home);
  if (pending) return void pending.then(() => done(null), (err: Error) => done(err));
  const started = new Promise<void>((resolve, reject) => launch(home, logFile, env, (err, child) => {
    if (err) reject(err);
    else resolve();
    done(err, child);
  }));
  launching.set(home, started);
  started.catch(() => undefined).finally(() => launching.delete(home));
}

function launch(home: string, logFile: string, env: Record<string, string>, done: (err: Error | null, child?: ChildProcess) => void): void {
  const script = require.resolve('pm2/lib/Daemon.js');
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [script], { detached: true, cwd: home, env, stdio: ['ignore', log, log, 'ipc'], windowsHide: true });
  } catch (err) {
    return done(err as Error);
  } finally {
    closeSync(log);
  }
  let settled = false;
  const settle = (err: Error | null): void => {
    if (settled) return;
    settled = true;
    if (err) return done(err);
    child.disconnect();
    child.unref();
    done(null, child);
  };
  child.once('error', settle);
  child.once('exit', (code, signal) => settle(new Error(`the PM2 daemon exited (${signal ?? code}) before it was ready; see ${logFile}`)));
  child.once('message', () => settle(null));
}

/** The daemon of `home`, if one runs: its pid and the names in its environment (Linux: /proc). */
export interface DaemonInfo {
  pid: number;
  /** Names beyond hotdeploy's base, or undefined when its environment cannot be read. */
  foreign: string[] | undefined;
  /** Started by hotdeploy (its mark is set). */
  ours: boolean;
}

/**
 * What the running daemon of `home` would hand its apps. `passEnv`: names the operator passes on
 * purpose, not counted as foreign.
 */
export function inspectDaemon(home: string, passEnv: readonly string[]): DaemonInfo | undefined {
  const pid = livePid(home);
  if (pid === undefined) return undefined;
  let names: string[];
  try {
    names = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((entry) => entry.slice(0, entry.indexOf('=')));
  } catch {
    return { pid, foreign: undefined, ours: false };
  }
  const foreign = names.filter((n) => !isBaseName(n) && !DAEMON_NAMES.has(n) && !passEnv.includes(n)).sort();
  return { pid, foreign, ours: names.includes(DAEMON_MARK) };
}

/** The pid of the daemon of `home`, if it is alive. */
function livePid(home: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * The PM2 home an earlier version of hotdeploy ran this data directory's apps under (`PM2_HOME`,
 * else `~/.pm2`), when its daemon still runs them: a child of that daemon whose environment names a
 * pointer of `dataDir` (Linux: /proc). Starting a daemon of its own instead would start the apps a
 * second time beside those that still hold their ports.
 */
export function legacyHome(dataDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const home = env.PM2_HOME ?? path.join(os.homedir(), '.pm2');
  const daemon = livePid(home);
  if (daemon === undefined) return undefined;
  const pointers = stateDir(dataDir) + path.sep;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  return pids.some((pid) => {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      return ppid === daemon && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(pointers);
    } catch {
      return false;
    }
  }) ? home : undefined;
}
