import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packDir } from '../bundle.js';
import { settle } from '../settle.js';
import type { UnpackFigure } from '../report.js';
import type { Stack } from '../stack.js';
import { median, ratio, round, summarize } from '../stats.js';
import { tempDir } from '../tmp.js';

const FILES = 5_000;
const PER_DIR = 100;

/**
 * 5,000 files of random bytes (so gzip cannot shrink them: the bundle really is ~50 MB), sizes
 * spread over 2-18 KB, 100 per folder, plus a package.json and an entry so the service accepts it.
 * The source tree stays until the figure's temp dir goes: on an ext4 without a journal the kernel
 * skips recently deleted inodes when it allocates new ones (`find_inode_bit` → `recently_deleted`,
 * for 1 to 5 minutes), so deleting 5,000 files just before the rounds makes both sides' first
 * rounds 6-10x slower.
 */
export async function makeBigBundle(root: string): Promise<{ file: string; bytes: number; unpackedBytes: number }> {
  const pkg = path.join(root, 'src', 'package');
  let unpackedBytes = 0;
  for (let d = 0; d < FILES / PER_DIR; d++) {
    const dir = path.join(pkg, 'data', `d${d}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < PER_DIR; f++) {
      const i = d * PER_DIR + f;
      const size = 2_000 + ((i * 7_919) % 16_001);
      unpackedBytes += size;
      await writeFile(path.join(dir, `f${i}.bin`), randomBytes(size));
    }
  }
  await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'bulk', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } }));
  await writeFile(path.join(pkg, 'index.js'), 'module.exports = (req, res) => res.end("bulk");\n');
  const file = path.join(root, 'bulk.tgz');
  await packDir(path.join(root, 'src'), file);
  return { file, bytes: (await stat(file)).size, unpackedBytes };
}

/**
 * `sync(1)` before each side is timed, so neither starts while the other's 48 MB are still being
 * written back. Neither side's own writes are waited for.
 */
function syncDisk(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sync exited with ${code}`))));
  });
}

function tarExtract(file: string, into: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-xzf', file, '-C', into], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar -xzf exited with ${code}: ${err}`))));
  });
}

/**
 * Figure 6: the same .tgz uploaded to the service (`?activate=false`: stored, unpacked, hashed, made
 * visible; no deployment) vs extracted by `tar -xzf`, back to back in each round, service first in
 * even rounds and tar first in odd ones; the ratio is the median of the rounds' own ratios.
 * `tar` extracts beside the service's own unpacking, into a folder of the service's `tmp/`: the cost
 * of creating a file depends on where the kernel allocates its inode (a block group with recently
 * deleted inodes is scanned past them, see makeBigBundle), and a new folder's inodes are allocated
 * near its parent's, so both sides start from the same parent.
 * Paired, as figure 4's rounds are: a shared VM's disk switches between spells up to 6× apart in
 * speed within a minute (the slow ones follow mass deletes, above), and a change of spell in the
 * middle of the rounds moves the ratio of the two sides' medians by tenths; the two halves of a
 * round share their spell.
 */
export async function unpackFigure(stack: Stack, rounds: number): Promise<UnpackFigure> {
  const { dir, cleanup } = await tempDir('hd-bench-unpack-');
  try {
    const bundle = await makeBigBundle(dir);
    const service: number[] = [];
    const tar: number[] = [];
    const roundRatios: number[] = [];
    const timed = async (run: () => Promise<unknown>): Promise<number> => {
      await settle();
      await syncDisk();
      const t0 = performance.now();
      await run();
      return performance.now() - t0;
    };
    const viaService = (version: string): Promise<number> => timed(() => stack.upload('bulk', version, { file: bundle.file, bytes: bundle.bytes }, '?activate=false'));
    const viaTar = async (name: string): Promise<number> => {
      const into = path.join(stack.dataDir, 'tmp', `bench-tar-${name}`);
      await mkdir(into, { recursive: true });
      return timed(() => tarExtract(bundle.file, into));
    };
    // One untimed round first. Round 0 starts with the service, whose first side is the slowest
    // (about 2x against 1.0-1.6x after): the service's first 48 MB upload grows its threads' heaps
    // (11,000-14,000 page faults per unpacker thread, under 3,000 after), and the first files
    // created after the earlier figures deleted theirs meet the skipped inodes (above).
    await viaService('warm-up');
    await viaTar('warm-up');
    for (let i = 0; i < rounds; i++) {
      // Both keep what they wrote until the end, as the service keeps its releases (see makeBigBundle).
      let s: number;
      let t: number;
      if (i % 2 === 0) {
        s = await viaService(`r${i}`);
        t = await viaTar(String(i));
      } else {
        t = await viaTar(String(i));
        s = await viaService(`r${i}`);
      }
      service.push(s);
      tar.push(t);
      roundRatios.push(s / t);
    }
    return {
      files: FILES + 2, unpackedBytes: bundle.unpackedBytes, bundleBytes: bundle.bytes, service: summarize(service), tar: summarize(tar),
      roundRatios: roundRatios.map((r) => round(r, 3)), ratio: round(median(roundRatios), 2), ratioOfMedians: ratio(median(service), median(tar)),
      warmUpRound: true,
    };
  } finally {
    await cleanup();
  }
}
