import { gzipSync } from 'node:zlib';
import { Header, create } from 'tar';
import { tempDir, writeTree } from './tmp.js';

/** A minimal valid handler-mode app. */
export function appFiles(marker: string): Record<string, string | object> {
  return {
    // Port 0: a free port wherever it runs (PM2 cluster workers share it); an upload needs a port source.
    'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } },
    'index.js': `module.exports = (req, res) => res.end(${JSON.stringify(marker)});\n`,
    'lib/util.js': `exports.marker = ${JSON.stringify(marker)};\n`,
  };
}

/** A real .tgz built with the `tar` package from a temp tree; `prefix` wraps it like `npm pack` (`package/`). */
export async function makeBundle(files: Record<string, string | object>, prefix = 'package'): Promise<Buffer> {
  const { dir, cleanup } = await tempDir('hotdeploy-bundle-');
  try {
    const root = prefix ? `${dir}/${prefix}` : dir;
    await writeTree(root, files);
    const entries = prefix ? [prefix] : Object.keys(files).map((f) => f.split('/')[0] as string).filter((v, i, a) => a.indexOf(v) === i);
    const chunks: Buffer[] = [];
    // A fixed mtime: the same files must give the same bytes (idempotent re-upload vs 409 tests).
    const stream = create({ gzip: true, cwd: dir, portable: true, mtime: new Date(0) }, entries);
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  } finally {
    await cleanup();
  }
}

export interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  body?: string | Buffer;
  linkpath?: string;
  mode?: number;
  /** Declared size when it must differ from the body (a lying header). */
  size?: number;
}

/**
 * A tar archive written block by block with node-tar's `Header`, for hostile entries node-tar's
 * packer would never produce (as node-tar builds its attack archives in memory).
 */
export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const type = e.type ?? 'File';
    blocks.push(tarBlock({
      path: e.path, type, size: e.size ?? (type === 'File' ? body.length : 0), mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      linkpath: e.linkpath, mtime: new Date(0), uid: 0, gid: 0,
    }, type === 'File' ? body : Buffer.alloc(0)));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function rawTgz(entries: RawEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}

/** The files of `appFiles`, as raw entries, so hostile entries can be added beside a valid app. */
export function rawApp(marker: string, prefix = ''): RawEntry[] {
  return Object.entries(appFiles(marker)).map(([p, content]) => ({
    path: prefix + p, body: typeof content === 'string' ? content : JSON.stringify(content),
  }));
}

/** One entry as tar bytes: a header written by node-tar's `Header`, then the body padded to 512 bytes. */
export function tarBlock(fields: ConstructorParameters<typeof Header>[0], body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(512);
  new Header(fields).encode(header, 0);
  return Buffer.concat([header, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

/** A header's checksum written anew after its bytes were edited by hand (an edit otherwise fails it). */
export function rewriteChecksum(header: Buffer): Buffer {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += header[i] as number;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}
