import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FileIndex } from './file-index.js';
import { resolveAsImport, type Resolved } from './esm-hooks.js';
import { fromRel, toRel } from './registry.js';

/** A relative specifier spelled the same as a URL and as a path: no `%`, `?`, `#`, `\` or spaces. */
const PLAIN_RELATIVE = /^\.\.?\/[\w.@+~/-]*$/;

/** What an import resolves to without asking Node: a module of the app, or a URL outside it. */
export type KnownResolution = { target: string; format: string } | { target: undefined; url: string; format: string };

/**
 * How one ES module app's imports resolve, as far as it can be told without Node's resolver. Node's
 * resolution of an import from a new release's file starts afresh (its resolve cache is keyed by the
 * importing URL) with `stat`, `realpath` and package.json reads, and keeps an entry per release for
 * good; an update re-evaluates modules of a new release each time. So:
 * - a relative specifier naming a file the release's file index lists is that file (ES modules name
 *   files exactly: no extension search, no directory index); a listed file is its own realpath
 *   (index-probe.ts);
 * - its format comes from its extension, or for `.js` from what Node answered for another `.js` file
 *   of the same directory (the nearest package.json's `"type"`);
 * - a bare specifier (`'pkg'`, `'#internal'`) resolves as Node resolved it from the same directory.
 * Both memos go when a package.json or the set of paths changes (`forget`).
 */
export class EsmResolution {
  /** Release-relative directory → the format Node gives its `.js` files. */
  private readonly formats = new Map<string, string>();
  /** Requiring directory and bare specifier → what Node resolved it to. */
  private readonly bare = new Map<string, KnownResolution>();

  known(index: FileIndex | undefined, rel: string, specifier: string): KnownResolution | undefined {
    if (specifier.startsWith('./') || specifier.startsWith('../')) {
      if (!index?.links || !PLAIN_RELATIVE.test(specifier)) return undefined;
      const target = path.posix.join(path.posix.dirname(rel), specifier);
      if (!index.files.has(target)) return undefined;
      const format = this.formatOf(target);
      return format === undefined ? undefined : { target, format };
    }
    return isBare(specifier) ? this.bare.get(bareKey(rel, specifier)) : undefined;
  }

  /** Node resolved `specifier` from `rel` (to the app module `target`, or to something outside the app). */
  learn(rel: string, specifier: string, target: string | undefined, resolved: Resolved): void {
    const format = resolved.format;
    if (typeof format !== 'string') return;
    if (target?.endsWith('.js') && (format === 'module' || format === 'commonjs')) this.formats.set(path.posix.dirname(target), format);
    if (!isBare(specifier) || resolved.url.includes('?') || resolved.url.includes('#')) return;
    this.bare.set(bareKey(rel, specifier), target === undefined ? { target, url: resolved.url, format } : { target, format });
  }

  forget(): void {
    this.formats.clear();
    this.bare.clear();
  }

  /** The format of the app module `rel`, when its extension or its directory tells. */
  formatOf(rel: string): string | undefined {
    if (rel.endsWith('.mjs')) return 'module';
    if (rel.endsWith('.cjs')) return 'commonjs';
    return rel.endsWith('.js') ? this.formats.get(path.posix.dirname(rel)) : undefined;
  }
}

/**
 * `specifier`, imported by the module `parentRel`, resolved in the release `index` lists: a relative
 * path when it is a file of that release, else the path or URL it names (for an update's plan: does
 * this import resolve elsewhere now?).
 */
export function resolveImportIn(index: FileIndex, parentRel: string, specifier: string): string {
  const parentURL = pathToFileURL(fromRel(index.dir, parentRel)).href;
  const relative = specifier.startsWith('./') || specifier.startsWith('../');
  const url = relative ? new URL(specifier, parentURL).href : resolveAsImport(parentURL, specifier);
  if (!url.startsWith('file:')) return url;
  const file = fileURLToPath(url);
  const rel = file.startsWith(index.dir + path.sep) ? toRel(index.dir, file) : undefined;
  return rel !== undefined && index.files.has(rel) ? rel : file;
}

/** A relative path whose file URL spells it as it is. */
const PLAIN_PATH = /^[\w.@+~/-]+$/;
/** The last release directory's file URL: one per update, instead of a `pathToFileURL` per module. */
let dirHref = { dir: '', href: '' };

/** The file URL of `file`, the module `rel` of the release `dir`. */
export function fileHref(dir: string, rel: string, file: string): string {
  if (!PLAIN_PATH.test(rel)) return pathToFileURL(file).href;
  if (dirHref.dir !== dir) dirHref = { dir, href: pathToFileURL(dir).href };
  return `${dirHref.href}/${rel}`;
}

function isBare(specifier: string): boolean {
  return !specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.includes(':');
}

function bareKey(rel: string, specifier: string): string {
  return `${path.posix.dirname(rel)}\0${specifier}`;
}
