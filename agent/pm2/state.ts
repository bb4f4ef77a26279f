import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { HotError } from '../errors.js';

/**
 * The agent's own pointer per app: which release its workers host. The worker bootstrap reads it at
 * every (re)start, so PM2 restarts, reloads and a resurrect after a daemon death all land on it. It
 * is the agent's, not the service's `current`: an automatic rollback points workers back at once,
 * before the service has recorded anything (the current pointer changes atomically).
 */
export interface AppState {
  app: string;
  version: string;
  releaseDir: string;
  instances: number;
  env: Record<string, string>;
}

export function stateDir(dataDir: string): string {
  return path.join(dataDir, 'agent', 'apps');
}

export function stateFile(dataDir: string, app: string): string {
  return path.join(stateDir(dataDir), `${app}.json`);
}

/**
 * Write to a temp file then rename: readers see the old pointer or the new one, never half. Two
 * calls made at once, not through the thread pool: a pointer is a few hundred bytes, never fsync'd,
 * and it moves on the activation's path, between the workers' answers and the deployment's.
 */
export async function writeState(dataDir: string, state: AppState): Promise<void> {
  const file = stateFile(dataDir, state.app);
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const text = JSON.stringify(state, null, 2);
  try {
    writeFileSync(tmp, text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(tmp, text);
  }
  renameSync(tmp, file);
}

/** Forgets an app (its first release never came up): nothing to resurrect. */
export async function removeState(dataDir: string, app: string): Promise<void> {
  await rm(stateFile(dataDir, app), { force: true });
}

export function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export async function readStateFile(file: string): Promise<AppState> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new HotError('HOT_ERR_WORKER_STATE', `${file} cannot be read`, { cause: err });
  }
  if (!isAppState(value)) throw new HotError('HOT_ERR_WORKER_STATE', `${file} is not an app state`);
  return value;
}

export async function readState(dataDir: string, app: string): Promise<AppState | undefined> {
  try {
    return await readStateFile(stateFile(dataDir, app));
  } catch {
    return undefined;
  }
}

export async function listStates(dataDir: string): Promise<AppState[]> {
  const names = await readdir(stateDir(dataDir)).catch(() => [] as string[]);
  const states = await Promise.all(names.filter((n) => n.endsWith('.json'))
    .map((n) => readState(dataDir, n.slice(0, -'.json'.length))));
  return states.filter((s): s is AppState => s !== undefined);
}

function isAppState(value: unknown): value is AppState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.app === 'string' && typeof v.version === 'string' && typeof v.releaseDir === 'string'
    && typeof v.instances === 'number' && typeof v.env === 'object' && v.env !== null;
}

/**
 * The agent's pointers, read from disk once per app and then kept: the agent is their only writer
 * (workers only read them at start), so each activation's snapshot needs no file read.
 */
export class AppStates {
  private readonly known = new Map<string, AppState | undefined>();
  /** Whether `known` holds every pointer on disk (read once by `all`). */
  private complete = false;

  constructor(readonly dataDir: string) {}

  /** Every app's pointer, read from disk once and then kept (the agent writes them all). */
  async all(): Promise<AppState[]> {
    if (!this.complete) {
      for (const state of await listStates(this.dataDir)) if (!this.known.has(state.app)) this.known.set(state.app, state);
      this.complete = true;
    }
    return [...this.known.values()].filter((s): s is AppState => s !== undefined);
  }

  async read(app: string): Promise<AppState | undefined> {
    if (this.known.has(app)) return this.known.get(app);
    const state = await readState(this.dataDir, app);
    this.known.set(app, state);
    return state;
  }

  async write(state: AppState): Promise<void> {
    // Forgotten first: if the write fails, the next read goes to the file again.
    this.known.delete(state.app);
    await writeState(this.dataDir, state);
    this.known.set(state.app, state);
  }

  async remove(app: string): Promise<void> {
    this.known.delete(app);
    await removeState(this.dataDir, app);
    this.known.set(app, undefined);
  }

  /**
   * Every app with a pointer on disk (the resurrect), read afresh and not kept: an activation may
   * write one while this reads, so callers `read` each under the app's lock.
   */
  list(): Promise<AppState[]> {
    return listStates(this.dataDir);
  }
}
