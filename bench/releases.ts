import { createHash } from 'node:crypto';
import { link, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { releaseChanges, writeFileHashes, writeReleaseChanges, type StoredFileHashes } from '../services/server/file-hashes.js';
import type { Files } from './app-gen.js';
import { Parents } from './bundle.js';

interface Written {
  content: string;
  abs: string;
  hash: string;
}

/**
 * Writes releases the way the deploy service leaves them (a fresh directory each, with the
 * `.hotdeploy/files.json` hash manifest the runtime diffs, its list of symlinks, none here, and from
 * the second on the `changes.json` from the previous one, both by the service's own code), for the
 * in-process figures. Files equal to the previous release's are hard links to it (same bytes, own
 * path), so a 1,000-module release costs links rather than writes; the update under measurement
 * cannot tell the difference.
 */
export class ReleaseFarm {
  private last = new Map<string, Written>();
  private lastStored: { version: string; hashes: StoredFileHashes } | undefined;
  private count = 0;

  constructor(private readonly root: string) {}

  async write(files: Files): Promise<string> {
    const version = `r${++this.count}`;
    const dir = path.join(this.root, version);
    const next = new Map<string, Written>();
    const parents = new Parents();
    for (const [rel, content] of Object.entries(files)) {
      const abs = await parents.ready(path.join(dir, rel));
      const before = this.last.get(rel);
      if (before && before.content === content) {
        await link(before.abs, abs);
        next.set(rel, { content, abs, hash: before.hash });
      } else {
        await writeFile(abs, content);
        next.set(rel, { content, abs, hash: createHash('sha256').update(content).digest('hex') });
      }
    }
    const hashes = Object.fromEntries([...next].map(([rel, w]) => [rel, w.hash]));
    const stored = await writeFileHashes(dir, { version: 1, algorithm: 'sha256', files: hashes, links: [] });
    // The service's ingest does this against the app's current release: here, the previous one written.
    if (this.lastStored) await writeReleaseChanges(dir, releaseChanges(this.lastStored.version, this.lastStored.hashes, stored));
    this.lastStored = { version, hashes: stored };
    this.last = next;
    return dir;
  }
}
