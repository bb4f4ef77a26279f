import { existsSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fromRel, toRel } from './registry.js';

/**
 * Path bookkeeping of one app, given its current release `dir` on every call: which releases its
 * live code was evaluated from, how its bare requests resolved, which of its directories hold no
 * package.json. All of it keeps Node's own never-emptied caches from growing per release, or keeps
 * old code resolving into the current release.
 */
export class AppPaths {
  /** Release directory → how many live modules were evaluated from it (their `__dirname`). */
  private readonly loadedFrom = new Map<string, number>();
  /**
   * Bare requests as Node resolved them, by requiring directory (relative) and request: a release's
   * node_modules resolve alike in the next release unless something under node_modules changed
   * (`forgetBare`). Node's realpath and package.json caches would gain entries per release.
   */
  private readonly bare = new Map<string, string>();
  /** Release-relative directories known to hold no package.json, for the release `dir`. */
  private scopeFree = { dir: '', dirs: new Set<string>() };

  loaded(dir: string): void {
    this.loadedFrom.set(dir, (this.loadedFrom.get(dir) ?? 0) + 1);
  }

  forget(dir: string): void {
    const count = (this.loadedFrom.get(dir) ?? 1) - 1;
    if (count > 0) this.loadedFrom.set(dir, count);
    else this.loadedFrom.delete(dir);
  }

  releasesInUse(dir: string): string[] {
    return [...new Set([dir, ...this.loadedFrom.keys()])].sort();
  }

  /** An absolute path into a release live (or `alsoFrom`, retired) code came from, in the current one. */
  toCurrent(dir: string, file: string, alsoFrom?: string): string {
    for (const root of alsoFrom ? [alsoFrom, ...this.loadedFrom.keys()] : this.loadedFrom.keys()) {
      if (root !== dir && file.startsWith(root + path.sep)) return dir + file.slice(root.length);
    }
    return file;
  }

  /** The relative path of `file` under a release live code was evaluated from, if it is under one. */
  relInLoaded(file: string): string | undefined {
    for (const root of this.loadedFrom.keys()) if (file.startsWith(root + path.sep)) return toRel(root, file);
    return undefined;
  }

  bareTarget(dir: string, from: string, request: string): string | undefined {
    if (!from.startsWith(dir + path.sep)) return undefined;
    const target = this.bare.get(`${path.dirname(from)}\0${request}`.slice(dir.length));
    if (target === undefined) return undefined;
    return path.isAbsolute(target) ? target : fromRel(dir, target);
  }

  rememberBare(dir: string, from: string, request: string, filename: string): void {
    if (!from.startsWith(dir + path.sep) || isBuiltin(filename)) return;
    const target = filename.startsWith(dir + path.sep) ? toRel(dir, filename) : filename;
    this.bare.set(`${path.dirname(from)}\0${request}`.slice(dir.length), target);
  }

  forgetBare(): void {
    this.bare.clear();
  }

  /** A `.js` file of the app's own (not under node_modules) with no package.json between it and the root. */
  plainCommonJs(dir: string, filename: string): boolean {
    if (!filename.endsWith('.js')) return false;
    const rel = toRel(dir, filename);
    if (rel.startsWith('..') || rel.includes('node_modules/')) return false;
    if (this.scopeFree.dir !== dir) this.scopeFree = { dir, dirs: new Set() };
    const checked: string[] = [];
    for (let d = path.posix.dirname(rel); d !== '.' && !this.scopeFree.dirs.has(d); d = path.posix.dirname(d)) {
      if (existsSync(path.join(dir, d, 'package.json'))) return false;
      checked.push(d);
    }
    for (const d of checked) this.scopeFree.dirs.add(d);
    return true;
  }
}
