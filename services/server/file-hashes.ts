import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where a release keeps hotdeploy's own files; bundles may not bring one (DEPLOY_ERR_RESERVED_PATH). */
export const RESERVED_DIR = '.hotdeploy';

/**
 * `<release>/.hotdeploy/files.json`: the worker runtime diffs two of these to find changed modules,
 * and resolves the app's relative requests from one without a syscall per candidate.
 */
export interface FileHashManifest {
  version: 1;
  algorithm: 'sha256';
  files: Record<string, string>;
  /**
   * The release's symbolic links (posix paths relative to the root, sorted). Optional: releases
   * stored before it was added have none, and then the runtime resolves with syscalls (it cannot
   * tell a path that is a link from one that is missing).
   */
  links?: string[];
}

export async function writeFileHashes(root: string, manifest: FileHashManifest): Promise<void> {
  await mkdir(path.join(root, RESERVED_DIR), { recursive: true });
  await writeFile(path.join(root, RESERVED_DIR, 'files.json'), JSON.stringify(manifest) + '\n');
}
