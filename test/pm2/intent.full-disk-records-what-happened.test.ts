import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from '../../services/server/deployments.js';
import { startServer, type RunningServer } from '../../services/server/start-server.js';
import { ask, handlerApp } from '../helpers/apps.js';
import { makeBundle } from '../helpers/bundles.js';
import { putBundle } from '../helpers/child-server.js';
import { pm2Home } from '../helpers/pm2.js';
import { freePort } from '../helpers/ports.js';
import { TOKENS } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

// The data directory on a small tmpfs, filled to within a few KiB before a push: whatever the push
// ends as (upload refused, deployment refused before any switch, or live), the answer, the
// record, the audit line, the API's current release and what every worker serves agree.

/** Why this machine cannot run it (mounting a tmpfs needs root and the right to mount), or undefined. */
function cannotMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a small tmpfs needs root';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'hd-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skip = cannotMount();
if (skip) console.log(`intent.full-disk-records-what-happened: skipped (${skip})`);

/** Free bytes left for each push at the edge: 0 to 48 KiB by pages, and a few odd sizes. */
const EDGES = [...Array.from({ length: 13 }, (_, i) => i * 4096), 24 * 1024 + 512, 28 * 1024 - 100];

let mountDir: { dir: string; cleanup: () => Promise<void> };
let home: { home: string; cleanup: () => Promise<void> };
let server: RunningServer;
let dataDir: string;
let filler: string;
let port: number;

beforeAll(async () => {
  if (skip) return;
  mountDir = await tempDir('hd-edge-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mountDir.dir]);
  dataDir = path.join(mountDir.dir, 'data');
  filler = path.join(mountDir.dir, 'filler');
  home = await pm2Home();
  port = await freePort();
  server = await startServer({ dataDir, port: 0, pm2Home: home.home, tokens: [{ name: 'admin', token: TOKENS.admin }], logger: false });
});

afterAll(async () => {
  if (skip) return;
  await server?.close();
  await home?.cleanup();
  execFileSync('umount', ['-l', mountDir.dir]);
  await mountDir.cleanup();
});

/** Fills the filesystem so that `free` bytes are left. */
async function fillLeaving(free: number): Promise<void> {
  await rm(filler, { force: true });
  const fs = await statfs(mountDir.dir);
  await writeFile(filler, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - free)));
}

async function push(version: string, message: string): Promise<{ status: number; body: { code?: string; deployment?: Deployment | null } }> {
  const files = handlerApp({ name: 'shop', version, port, message });
  const res = await putBundle(server.url, 'shop', version, await makeBundle(files));
  return { status: res.status, body: (await res.json()) as { code?: string; deployment?: Deployment | null } };
}

async function get<T>(pathname: string): Promise<T> {
  return (await fetch(`${server.url}${pathname}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).json() as Promise<T>;
}

/** What ten requests to the app got (PM2 spreads them over both workers). */
async function served(): Promise<string[]> {
  const out = new Set<string>();
  for (let i = 0; i < 10; i++) out.add((await ask(port)).message);
  return [...out].sort();
}

async function auditLines(deploymentId: string): Promise<{ outcome: string }[]> {
  const text = await readFile(path.join(dataDir, 'audit.log'), 'utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { deploymentId?: string; outcome: string }).filter((e) => e.deploymentId === deploymentId);
}

describe.skipIf(skip !== undefined)('a push at the edge of a full disk', () => {
  it('answers, records and serves the same outcome, whatever the free space', async () => {
    const first = await push('0.0.0', 'start');
    expect(first.body.deployment?.status, first.body.deployment?.reason).toBe('succeeded');
    const tally: Record<string, number> = {};
    for (const [i, free] of EDGES.entries()) {
      // A push with room first: its deployment writes the reserve again if the one before used it.
      await rm(filler, { force: true });
      const roomy = await push(`${i}.1.0`, `roomy ${i}`);
      expect(roomy.body.deployment?.status, roomy.body.deployment?.reason).toBe('succeeded');

      await fillLeaving(free);
      const edge = await push(`${i}.2.0`, `edge ${i}`);
      await rm(filler, { force: true });

      const { current } = await get<{ current: string }>('/v1/apps/shop');
      const d = edge.body.deployment;
      const what = `${free} bytes free: HTTP ${edge.status} ${edge.body.code ?? d?.status ?? ''} ${d?.reason ?? ''}`;
      if (!d) {
        // The upload itself did not fit: refused with a code, nothing changed.
        expect(edge.status, what).toBeGreaterThanOrEqual(400);
        expect(edge.body.code, what).toMatch(/^DEPLOY_ERR_/);
        expect(current, what).toBe(`${i}.1.0`);
        expect(await served(), what).toEqual([`roomy ${i}`]);
        tally[`upload refused (${edge.body.code})`] = (tally[`upload refused (${edge.body.code})`] ?? 0) + 1;
        continue;
      }
      const live = d.status === 'succeeded';
      expect(current, what).toBe(live ? `${i}.2.0` : `${i}.1.0`);
      expect(await served(), what).toEqual([live ? `edge ${i}` : `roomy ${i}`]);
      expect((await get<Deployment>(`/v1/deployments/${d.id}`)).status, what).toBe(d.status);
      expect((await auditLines(d.id)).map((e) => e.outcome), what).toEqual([d.status]);
      tally[`deployment ${d.status}`] = (tally[`deployment ${d.status}`] ?? 0) + 1;
    }
    console.log(`edge pushes by outcome: ${JSON.stringify(tally)}`);
    // The sweep reaches both sides of the edge: some uploads do not fit, some deployments go live.
    expect(Object.keys(tally).some((k) => k.startsWith('upload refused'))).toBe(true);
    expect(tally['deployment succeeded'] ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
