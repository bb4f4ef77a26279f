import path from 'node:path';
import type { FileIndex } from './file-index.js';
import type { Probe } from './resolve.js';

/**
 * The deploy service's own folder in a release (file-index.ts `MANIFEST_FILE`'s): not the app's,
 * not indexed. Spelled out: importing file-index.ts here would close a cycle through registry.ts.
 */
const RESERVED = '.hotdeploy';

/**
 * Answers resolve.ts's questions from the release's file index, with no syscall: "a file" when the
 * index lists a regular file there, "a directory" when it lists something under it. A file listed
 * under real directories of a canonical release directory is its own realpath: the unpacker never
 * writes through a symlink (services/server/unpack/extract-worker.ts, `ensureParent`) and the listing
 * does not follow one.
 *
 * A path the index cannot speak for — a link or below one, outside the release, under
 * `.hotdeploy/` — stops the probe: it answers nothing from then on, so a later candidate cannot win
 * over one only the disk knows (a symlink to a file comes before `x.json` in Node's order). Its
 * negative answers are not trusted either (resolve.ts falls back to the disk): the app may have
 * written files into its release since the index was read.
 *
 * Undefined for an index that does not list links (a `files.json` older than `links`): there a
 * link and a missing path look alike.
 */
export function indexProbe(index: FileIndex): Probe | undefined {
  const links = index.links;
  return links ? new IndexProbe(index, links) : undefined;
}

class IndexProbe implements Probe {
  private stopped = false;

  constructor(private readonly index: FileIndex, private readonly links: ReadonlySet<string>) {}

  kind(file: string): 'file' | 'dir' | undefined {
    const rel = this.relOf(file);
    if (rel === undefined) return undefined;
    if (this.index.files.has(rel)) return 'file';
    return rel === '' || dirsOf(this.index).has(rel) ? 'dir' : undefined;
  }

  real(file: string): string {
    return file;
  }

  hasPackageJson(dir: string): boolean {
    const rel = this.relOf(path.join(dir, 'package.json'));
    return rel !== undefined && this.index.files.has(rel);
  }

  /** `file` relative to the release (`/`-separated), or undefined — and stopped — when the index cannot speak for it. */
  private relOf(file: string): string | undefined {
    if (this.stopped) return undefined;
    const { dir } = this.index;
    if (file === dir) return '';
    const rel = file.startsWith(dir + path.sep) ? toPosix(file.slice(dir.length + 1)) : undefined;
    if (rel === undefined || rel === RESERVED || rel.startsWith(`${RESERVED}/`) || this.throughLink(rel)) {
      this.stopped = true;
      return undefined;
    }
    return rel;
  }

  /** `rel` or one of its parent directories is a link. */
  private throughLink(rel: string): boolean {
    if (this.links.size === 0) return false;
    for (let at = rel.length; at > 0; at = rel.lastIndexOf('/', at - 1)) {
      if (this.links.has(rel.slice(0, at))) return true;
    }
    return false;
  }
}

function toPosix(rel: string): string {
  return path.sep === '/' ? rel : rel.split(path.sep).join('/');
}

/** Directories of each index, built on its first directory question (most requests name a file). */
const dirsByIndex = new WeakMap<FileIndex, ReadonlySet<string>>();

function dirsOf(index: FileIndex): ReadonlySet<string> {
  let dirs = dirsByIndex.get(index);
  if (!dirs) dirsByIndex.set(index, (dirs = parentDirs([index.files.keys(), index.links ?? []])));
  return dirs;
}

/** Every directory above a listed path (a directory with nothing listed under it is not known). */
function parentDirs(lists: Iterable<string>[]): Set<string> {
  const dirs = new Set<string>();
  for (const rels of lists) {
    for (const rel of rels) {
      for (let at = rel.lastIndexOf('/'); at > 0; at = rel.lastIndexOf('/', at - 1)) {
        const dir = rel.slice(0, at);
        if (dirs.has(dir)) break;
        dirs.add(dir);
      }
    }
  }
  return dirs;
}
