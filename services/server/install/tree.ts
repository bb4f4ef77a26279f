import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { link, mkdir, readdir, readFile, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { DeployError } from '../errors.js';
import { RESERVED_DIR, type FileHashManifest } from '../file-hashes.js';

/** Files (posix path relative to the release root → sha256) and symlinks of a release's `node_modules`. */
export interface TreeIndex {
  files: Record<string, string>;
  links: string[];
}

export const NODE_MODULES = 'node_modules';
const PREFIX = `${NODE_MODULES}/`;

/** The `node_modules` part of a release's file index (its `files.json`). */
export function nodeModulesPart(index: { files: Record<string, string>; links?: string[] }): TreeIndex {
  const files: Record<string, string> = {};
  for (const rel in index.files) if (rel.startsWith(PREFIX)) files[rel] = index.files[rel] as string;
  return { files, links: (index.links ?? []).filter((rel) => rel.startsWith(PREFIX)) };
}

/** A release's file index (`files.json`'s content) with installed node_modules added. */
export function withTree(manifest: FileHashManifest, tree: TreeIndex): FileHashManifest {
  const links = [...(manifest.links ?? []), ...tree.links].sort();
  return { ...manifest, files: { ...manifest.files, ...tree.files }, links };
}

/** A release's files without its node_modules. */
export function withoutTree(files: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel in files) if (!rel.startsWith(PREFIX)) out[rel] = files[rel] as string;
  return out;
}

/** An unpacked node_modules tree's index (paths relative to the node_modules folder) as release paths. */
export function underNodeModules(index: FileHashManifest): TreeIndex {
  const files: Record<string, string> = {};
  for (const rel in index.files) files[`${PREFIX}${rel}`] = index.files[rel] as string;
  return { files, links: (index.links ?? []).map((rel) => `${PREFIX}${rel}`) };
}

/** Operations between two turns of the event loop while linking: close to one synchronous run, without holding the loop. */
const SLICE = 256;

/** Thread-pool calls in flight while linking in the background: the other threads stay free for the service's own I/O. */
const BACKGROUND_CALLS = 8;

/**
 * Recreates `index` under `to` from the release `from`: every folder made, every file a hard link
 * to the same inode (so its bytes, and the runtime's hash of it, are the same), every symlink
 * copied. Folders come from the paths (parents sort before their children). On an upload's path,
 * synchronous calls a slice at a time (an async call per file paid a thread-pool round trip each);
 * in the `background` (a spare), asynchronous calls, few at a time, so the event loop and the
 * thread pool stay free for the deployment running meanwhile.
 */
export async function linkTree(from: string, to: string, index: TreeIndex, background = false): Promise<void> {
  const rels = Object.keys(index.files);
  const dirs = new Set<string>();
  for (const rel of [...rels, ...index.links]) {
    for (let d = path.posix.dirname(rel); d !== '.' && !dirs.has(d); d = path.posix.dirname(d)) dirs.add(d);
  }
  const sortedDirs = [...dirs].sort();
  if (background) {
    for (const d of sortedDirs) await mkdir(path.join(to, d));
    await inParallel(rels, BACKGROUND_CALLS, (rel) => link(path.join(from, rel), path.join(to, rel)));
    await inParallel(index.links, BACKGROUND_CALLS, async (rel) => symlink(await readlink(path.join(from, rel)), path.join(to, rel)));
    return;
  }
  const steps: Array<() => void> = [
    ...sortedDirs.map((d) => () => mkdirSync(path.join(to, d))),
    ...rels.map((rel) => () => linkSync(path.join(from, rel), path.join(to, rel))),
    ...index.links.map((rel) => () => symlinkSync(readlinkSync(path.join(from, rel)), path.join(to, rel))),
  ];
  for (let i = 0; i < steps.length; i += SLICE) {
    for (const step of steps.slice(i, i + SLICE)) step();
    if (i + SLICE < steps.length) await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Lists and hashes what npm wrote under `<root>/node_modules`. A symlink must stay inside the
 * release (an install script could write any), and only files, folders and symlinks may be there.
 */
export async function hashTree(root: string): Promise<TreeIndex> {
  const files: string[] = [];
  const links: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) files.push(child);
      else if (entry.isSymbolicLink()) links.push(await checkedLink(root, child));
      else throw new DeployError('DEPLOY_ERR_INSTALL', `the install left ${child}, which is neither a file, a folder nor a symlink`);
    }
  };
  await walk(NODE_MODULES);
  return { files: await hashFiles(root, files), links: links.sort() };
}

/**
 * One digest of the app's own files at `root` (everything but node_modules and the reserved folder),
 * symlinks by their target: what the app's own install scripts may read.
 */
export async function ownFilesDigest(root: string): Promise<string> {
  const files: string[] = [];
  const links: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
      if (rel === '' && (entry.name === NODE_MODULES || entry.name === RESERVED_DIR)) continue;
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) files.push(child);
      else if (entry.isSymbolicLink()) links[child] = await readlink(path.join(root, child));
    }
  };
  await walk('');
  return createHash('sha256').update(JSON.stringify({ files: await hashFiles(root, files.sort()), links })).digest('hex');
}

/** The sha256 of each of `root`'s files `rels` as they are on disk, in the order given; one that is gone is left out. */
export async function hashFiles(root: string, rels: readonly string[]): Promise<Record<string, string>> {
  const found = new Map<string, string>();
  await inParallel(rels, 16, async (rel) => {
    const bytes = await readFile(path.join(root, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (bytes) found.set(rel, createHash('sha256').update(bytes).digest('hex'));
  });
  const hashes: Record<string, string> = {};
  for (const rel of rels) if (found.has(rel)) hashes[rel] = found.get(rel) as string;
  return hashes;
}

async function checkedLink(root: string, rel: string): Promise<string> {
  const target = path.resolve(path.dirname(path.join(root, rel)), await readlink(path.join(root, rel)));
  if (!target.startsWith(root + path.sep)) throw new DeployError('DEPLOY_ERR_INSTALL', `the install left ${rel}, a link out of the release`);
  return rel;
}

async function inParallel<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
