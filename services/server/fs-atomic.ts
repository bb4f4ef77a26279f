import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes JSON so that readers see either the old or the new content, never a torn file: write a
 * sibling temp file, fsync it, rename over the target (rename(2) is atomic within one filesystem).
 * `sync: false` skips the fsync: still atomic for readers and across a killed process, but a power
 * loss may leave the old content, or an empty or torn file, so only for records that are rewritten
 * durably later and whose readers at start-up cope with that (deployments.ts).
 */
export async function writeJsonAtomic(file: string, value: unknown, mode = 0o644, { sync = true } = {}): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * `readJsonFile` with one synchronous read, for the small records a deployment reads on its hot
 * path (release metadata, pointers).
 */
export function readJsonFileNow<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** The parsed JSON of `file`, or undefined when it does not exist. */
export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** Points `link` at `target` atomically: a new symlink beside it, renamed over the old one. */
export async function swapSymlink(link: string, target: string): Promise<void> {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.${randomBytes(6).toString('hex')}.tmp`);
  await symlink(target, tmp);
  try {
    await rename(tmp, link);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Whether `err` is a Node errno error with that code. */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
