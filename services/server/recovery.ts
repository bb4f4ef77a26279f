import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readdirOrEmpty, type ReleaseStore } from './release-store.js';

/**
 * Start-up repair of the data directory after a crash or a SIGKILL: staging leftovers removed,
 * half-committed releases (a folder without metadata, or metadata without a folder) removed, stray
 * temp files of atomic writes deleted, pointers to vanished releases cleared, the current link
 * rebuilt when wrong. Intact state is left byte for byte as it was.
 */
export async function recoverReleaseStore(store: ReleaseStore): Promise<void> {
  await rm(store.tmpDir, { recursive: true, force: true, maxRetries: 3 });
  await mkdir(store.tmpDir, { recursive: true });
  await mkdir(store.appsDir, { recursive: true });
  for (const app of await readdirOrEmpty(store.appsDir)) await recoverApp(store, app);
}

async function recoverApp(store: ReleaseStore, app: string): Promise<void> {
  const appDir = store.appDir(app);
  const metas = new Set((await readdirOrEmpty(path.join(appDir, 'meta'))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  const dirs = new Set(await readdirOrEmpty(path.join(appDir, 'releases')));
  for (const dir of dirs) if (!metas.has(dir)) await rm(path.join(appDir, 'releases', dir), { recursive: true, force: true });
  for (const meta of metas) if (!dirs.has(meta)) await rm(store.metaFile(app, meta), { force: true });
  for (const sub of ['', 'meta']) {
    for (const name of await readdirOrEmpty(path.join(appDir, sub))) {
      if (name.endsWith('.tmp')) await rm(path.join(appDir, sub, name), { force: true });
    }
  }
  const pointers = await store.pointers(app);
  const live = (v: string | null) => (v !== null && metas.has(v) && dirs.has(v) ? v : null);
  const current = live(pointers.current);
  const previous = live(pointers.previous);
  if (current !== pointers.current || previous !== pointers.previous) await store.setPointers(app, current, previous);
  else if (current !== null) await store.linkCurrent(app, current, true);
}
