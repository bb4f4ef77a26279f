import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { create } from 'tar';
import type { Files } from './app-gen.js';
import { tempDir } from './tmp.js';

/** Writes `files` under `root`. */
export async function writeFiles(root: string, files: Files): Promise<void> {
  const parents = new Parents();
  for (const [rel, content] of Object.entries(files)) await writeFile(await parents.ready(path.join(root, rel)), content);
}

/** Makes each file's folder once per tree (thousands of files share a few folders). */
export class Parents {
  private readonly made = new Set<string>();

  async ready(file: string): Promise<string> {
    const parent = path.dirname(file);
    if (!this.made.has(parent)) {
      await mkdir(parent, { recursive: true });
      this.made.add(parent);
    }
    return file;
  }
}

/** A real .tgz of `files` under a `package/` folder, as `npm pack` makes it (node-tar, gzip). */
export async function packFiles(files: Files): Promise<Buffer> {
  const { dir, cleanup } = await tempDir('hd-bench-pack-');
  try {
    await writeFiles(path.join(dir, 'package'), files);
    return await packDir(dir);
  } finally {
    await cleanup();
  }
}

/** `<cwd>/package` as a gzip'd tar, in memory or (with `out`) to a file. */
export async function packDir(cwd: string, out?: string): Promise<Buffer> {
  const stream = create({ gzip: true, cwd, portable: true }, ['package']) as unknown as Readable;
  if (out) {
    await pipeline(stream, createWriteStream(out));
    return Buffer.alloc(0);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
