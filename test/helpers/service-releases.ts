import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import type { UpdateResult } from '../../agent/messages.js';
import { makeBundle } from './bundles.js';
import { testServer, upload } from './server.js';

/**
 * Releases 1.0.0, 2.0.0, ... of one app as the real deploy service stores them: each uploaded and
 * activated in turn, so each is unpacked on top of the one before (its `.hotdeploy/changes.json`).
 * Returns the `releases/` folder of a copy: the service's data directory is gone once it returns.
 */
export async function serviceReleases(root: string, trees: Record<string, string | object>[]): Promise<string> {
  const server = await testServer();
  try {
    for (const [i, files] of trees.entries()) {
      const res = await upload(server.app, 'demo', `${i + 1}.0.0`, await makeBundle(files));
      expect(res.statusCode, res.body).toBe(201);
    }
    return await copyReleases(path.join(server.dataDir, 'apps/demo/releases'), root);
  } finally {
    await server.close();
  }
}

/** A copy of a `releases/` folder under `root`, to host the same releases a second time. */
export async function copyReleases(releases: string, root: string): Promise<string> {
  const copy = path.join(root, 'releases');
  await cp(releases, copy, { recursive: true });
  return copy;
}

/** Every release's `.hotdeploy/changes.json` removed: workers can only read `files.json`. */
export async function withoutChanges(releases: string, versions: string[]): Promise<void> {
  for (const v of versions) await rm(path.join(releases, v, '.hotdeploy/changes.json'));
}

/** What an update decided, without its timing and folders (equal for two copies of the same releases). */
export function decision(result: UpdateResult): Omit<UpdateResult, 'durationMs' | 'from' | 'to'> {
  const { durationMs: _d, from: _f, to: _t, ...rest } = result;
  return rest;
}
