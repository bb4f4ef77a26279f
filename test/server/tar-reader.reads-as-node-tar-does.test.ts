import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Header, Parser, create, type ReadEntry } from 'tar';
import { isDeployError } from '../../services/server/errors.js';
import { TarReader, type TarEntry } from '../../services/server/unpack/tar-reader.js';
import { rewriteChecksum, tarBlock as header } from '../helpers/bundles.js';
import { tempDir } from '../helpers/tmp.js';

/** What the unpacker uses of an entry, read by either parser; the body by its sha256. */
interface Seen {
  path: string;
  type: string;
  size: number;
  mode: number | undefined;
  mtime: number | undefined;
  linkpath: string;
  body: string;
}

/** node-tar's Parser in strict mode (what the unpacker used before), all entries' bodies read. */
function byNodeTar(tar: Buffer): Promise<Seen[]> {
  return new Promise((resolve, reject) => {
    const seen: Seen[] = [];
    const parser = new Parser({ strict: true, brotli: false, zstd: false });
    parser.on('entry', (entry: ReadEntry) => {
      const hash = createHash('sha256');
      entry.on('data', (chunk: Buffer) => hash.update(chunk));
      entry.on('end', () => seen.push({
        path: entry.path, type: entry.type, size: entry.size ?? 0, mode: entry.mode, mtime: entry.mtime?.getTime(),
        linkpath: entry.linkpath ?? '', body: hash.digest('hex'),
      }));
    });
    parser.on('error', reject);
    parser.on('end', () => resolve(seen));
    parser.end(tar);
  });
}

/** The reader, fed `tar` in pieces of `piece` bytes (a header or a body may be split anywhere). */
function byReader(tar: Buffer, piece = tar.length): Seen[] {
  const seen: Seen[] = [];
  const reader = new TarReader((entry: TarEntry) => {
    const hash = createHash('sha256');
    return {
      data: (chunk) => hash.update(chunk),
      end: () => seen.push({
        path: entry.path, type: entry.type, size: entry.size, mode: entry.mode, mtime: entry.mtime?.getTime(), linkpath: entry.linkpath,
        body: hash.digest('hex'),
      }),
    };
  });
  for (let at = 0; at < tar.length; at += piece) reader.write(tar.subarray(at, at + piece));
  reader.end();
  return seen;
}

function readerError(tar: Buffer): string {
  try {
    byReader(tar);
  } catch (err) {
    if (isDeployError(err)) return err.code;
    throw err;
  }
  return 'none';
}

async function expectSameAsNodeTar(tar: Buffer): Promise<Seen[]> {
  const expected = await byNodeTar(tar);
  expect(expected.length).toBeGreaterThan(0);
  for (const piece of [tar.length, 512, 1, 7, 511, 513, 4096 + 3]) expect(byReader(tar, piece)).toEqual(expected);
  return expected;
}

function paxRecord(key: string, value: string): string {
  const text = ` ${key}=${value}\n`;
  let length = text.length + 1;
  while (String(length).length + Buffer.byteLength(text) !== length) length = String(length).length + Buffer.byteLength(text);
  return `${length}${text}`;
}

const END = Buffer.alloc(1024);
const long = 'a-folder-name-that-is-long/'.repeat(6);

let tree: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tree = await tempDir('hotdeploy-tar-reader-');
  const root = path.join(tree.dir, 'package');
  const files: Record<string, Buffer> = {
    'package.json': Buffer.from('{"name":"t"}'),
    'empty.txt': Buffer.alloc(0),
    'block.bin': randomBytes(512),
    'odd.bin': randomBytes(513),
    'big.bin': randomBytes(300_000),
    [`${long}deep.js`]: Buffer.from('module.exports = 1;\n'),
    [`${'n'.repeat(140)}.js`]: Buffer.from('long single name\n'),
    'ünïcödé/名前.js': Buffer.from('unicode\n'),
  };
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), body, { mode: rel.endsWith('.bin') ? 0o755 : 0o644 });
  }
  await symlink('package.json', path.join(root, 'alias.json'));
  await symlink(`${long}deep.js`, path.join(root, 'to-deep.js'));
  await link(path.join(root, 'odd.bin'), path.join(root, 'odd-again.bin'));
  await utimes(path.join(root, 'big.bin'), new Date('2020-02-02T02:02:02.500Z'), new Date('2020-02-02T02:02:02.500Z'));
});
afterAll(() => tree.cleanup());

describe('archives real packers write', () => {
  it('reads what node-tar packs (ustar prefixes, pax for long names, links) as node-tar reads it', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of create({ cwd: tree.dir, portable: true }, ['package']) as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    const seen = await expectSameAsNodeTar(Buffer.concat(chunks));
    expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(['File', 'Directory', 'SymbolicLink']));
  });

  it.each(['gnu', 'pax', 'ustar', 'oldgnu'])('reads what GNU tar writes as --format=%s as node-tar reads it', async (format) => {
    // GNU tar refuses a name ustar cannot hold; the others write GNU long names (L, K) or pax headers.
    const names = format === 'ustar' ? ['package/package.json', 'package/odd.bin', 'package/odd-again.bin', 'package/alias.json'] : ['package'];
    const tar = execFileSync('tar', ['-c', `--format=${format}`, '-C', tree.dir, ...names], { maxBuffer: 64 * 1024 * 1024 });
    const seen = await expectSameAsNodeTar(tar);
    expect(seen.some((e) => e.type === 'Link')).toBe(true);
    if (format !== 'ustar') expect(seen.some((e) => e.path.length > 100)).toBe(true);
  });
});

describe('headers written by hand', () => {
  it('applies a pax header, then a GNU long name after it, to the next entry only', async () => {
    const pax = Buffer.from(paxRecord('mtime', '1600000000.25') + paxRecord('path', 'package/from-pax.js') + paxRecord('size', '5'));
    const tar = Buffer.concat([
      header({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: pax.length }, pax),
      header({ path: '././@LongLink', type: 'NextFileHasLongPath', size: 30 }, Buffer.from('package/from-gnu-long-name.js\0')),
      header({ path: 'package/short.js', type: 'File', size: 999, mode: 0o640, mtime: new Date(0) }, Buffer.from('hello')),
      header({ path: 'package/next.js', type: 'File', size: 3, mode: 0o644, mtime: new Date(1000) }, Buffer.from('abc')),
      END,
    ]);
    const seen = await expectSameAsNodeTar(tar);
    expect(seen.map((e) => [e.path, e.size])).toEqual([['package/from-gnu-long-name.js', 5], ['package/next.js', 3]]);
  });

  it('applies a global pax header to every later entry, but never its path', async () => {
    const pax = Buffer.from(paxRecord('mtime', '1500000000') + paxRecord('path', 'ignored') + paxRecord('comment', 'git archive'));
    const tar = Buffer.concat([
      header({ path: 'pax_global_header', type: 'GlobalExtendedHeader', size: pax.length }, pax),
      header({ path: 'package/a.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('a')),
      header({ path: 'package/b.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('b')),
      END,
    ]);
    const seen = await expectSameAsNodeTar(tar);
    expect(seen.map((e) => e.mtime)).toEqual([1_500_000_000_000, 1_500_000_000_000]);
  });

  it("reads an old tar's folder (a file whose name ends in '/') and a folder whose header gives it a size", async () => {
    const dir = header({ path: 'package/old-style/', type: 'File', size: 0, mode: 0o755 });
    const sized = Buffer.alloc(512);
    new Header({ path: 'package/sized', type: 'Directory', size: 0, mode: 0o755 }).encode(sized, 0);
    // A size in a folder's header (some tars put stat's) is not a body: node-tar reads the next block as a header.
    sized.write('00000001000\0', 124, 'ascii');
    rewriteChecksum(sized);
    const tar = Buffer.concat([dir, sized, header({ path: 'package/x.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('x')), END]);
    const seen = await expectSameAsNodeTar(tar);
    expect(seen.map((e) => [e.path, e.type])).toEqual([['package/old-style/', 'Directory'], ['package/sized', 'Directory'], ['package/x.js', 'File']]);
  });

  it('reads a size in base-256, as tars write sizes over 8 GB', async () => {
    const block = header({ path: 'package/b256.bin', type: 'File', size: 3, mode: 0o644 });
    block.fill(0, 124, 136);
    block[124] = 0x80;
    block[135] = 3;
    rewriteChecksum(block);
    await expectSameAsNodeTar(Buffer.concat([block.subarray(0, 512), Buffer.from('xyz'), Buffer.alloc(509), END]));
  });
});

describe('archives both refuse', () => {
  const file = header({ path: 'package/a.js', type: 'File', size: 600, mode: 0o644 }, randomBytes(600));

  it.each<[string, Buffer]>([
    ['a header that fails its checksum', Buffer.concat([corrupt(file, 20), END])],
    ['a body cut short', file.subarray(0, 700)],
    ['a body cut inside its padding', file.subarray(0, 512 + 600 + 100)],
    ['only the end-of-archive blocks', END],
    ['bytes that are not a tar at all', Buffer.from('{"name":"not a tar"}\n'.repeat(60))],
    ['a link without a target', Buffer.concat([header({ path: 'package/l', type: 'SymbolicLink', linkpath: '' }), END])],
  ])('%s', async (_name, tar) => {
    await expect(byNodeTar(tar)).rejects.toThrow();
    expect(readerError(tar)).toBe('DEPLOY_ERR_BAD_ARCHIVE');
  });
});

describe('where the reader is stricter than node-tar', () => {
  it('hands on an entry of a type it cannot unpack (node-tar skips a sparse file quietly), so the checks refuse it', () => {
    const sparse = header({ path: 'package/holes.bin', type: 'File', size: 4, mode: 0o644 }, Buffer.from('data'));
    sparse[156] = 0x53;
    rewriteChecksum(sparse);
    const seen = byReader(Buffer.concat([sparse, END]));
    expect(seen.map((e) => [e.path, e.type])).toEqual([['package/holes.bin', 'SparseFile']]);
  });

  it('refuses a stream cut inside a header, an extended header over 1 MiB and a pax size that is not a number', () => {
    const file = header({ path: 'package/a.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('a'));
    expect(readerError(Buffer.concat([file, file.subarray(0, 300)]))).toBe('DEPLOY_ERR_BAD_ARCHIVE');
    expect(readerError(Buffer.concat([header({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: 2 * 1024 * 1024 }, Buffer.alloc(2 * 1024 * 1024)), file, END])))
      .toBe('DEPLOY_ERR_BAD_ARCHIVE');
    const pax = Buffer.from(paxRecord('size', 'many'));
    expect(readerError(Buffer.concat([header({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: pax.length }, pax), file, END]))).toBe('DEPLOY_ERR_BAD_ARCHIVE');
  });

  it('stops at the end-of-archive blocks: what follows is not read', () => {
    const file = header({ path: 'package/a.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('a'));
    const after = header({ path: 'package/after-the-end.js', type: 'File', size: 1, mode: 0o644 }, Buffer.from('b'));
    expect(byReader(Buffer.concat([file, END, after])).map((e) => e.path)).toEqual(['package/a.js']);
  });
});

function corrupt(tar: Buffer, at: number): Buffer {
  const copy = Buffer.from(tar);
  copy[at] = (copy[at] as number) ^ 0xff;
  return copy;
}
