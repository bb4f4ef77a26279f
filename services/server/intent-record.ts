import { mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentKind, DeploymentStatus } from './deployments.js';
import { isErrno, readJsonFile } from './fs-atomic.js';
import type { Pointers } from './release-store.js';

/**
 * What a deployment is about to do, written (and fsync'd) before any host can switch, and its
 * outcome, written into the same file once the hosts answered and before the pointers, the
 * deployment record and the audit line. Whatever stops the service between the two (a crash, a
 * full disk), the next start finds what was intended and how far it went.
 */
export interface Intent {
  deploymentId: string;
  app: string;
  version: string;
  kind: DeploymentKind;
  by: string;
  sha256: string;
  createdAt: string;
  startedAt: string;
  /** The service's pointers when the deployment started. */
  before: Pick<Pointers, 'current' | 'previous'>;
  /** The pointers once it succeeds. */
  after: Pick<Pointers, 'current' | 'previous'>;
  /** Set once the hosts answered; absent: the service stopped while they worked (interrupted). */
  outcome?: IntentOutcome;
}

export interface IntentOutcome {
  status: DeploymentStatus;
  reason?: string;
  finishedAt: string;
  hosts: { host: string; status: string; path: string }[];
}

/**
 * Each intent file has this fixed size, padded with spaces (JSON allows trailing whitespace), so the
 * outcome overwrites blocks the file already has: writing it needs no free space.
 */
export const INTENT_SLOT_BYTES = 16 * 1024;
/**
 * Space held back for what a deployment writes once its hosts may have switched (the agent's
 * pointer, the service's pointers, the deployment record, the audit line), released to it when
 * the disk is nearly full. Measured: those writes take under 32 KiB on a 4 KiB-block filesystem.
 */
export const RESERVE_BYTES = 128 * 1024;
/** Below this much free space a deployment starts by releasing the reserve to itself. */
export const LOW_SPACE_BYTES = 4 * 1024 * 1024;

/** Errors that mean the disk (or the process's share of it) is full. */
export function isNoSpace(err: unknown): boolean {
  return isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT') || isErrno(err, 'EFBIG');
}

/** `begin` could not write the intent: nothing may switch, and the deployment fails saying why. */
export class IntentRefused extends Error {
  constructor(cause: unknown) {
    super(`the intent record could not be written (${(cause as Error).message}); nothing was changed`, { cause });
  }
}

/**
 * `<dataDir>/intent/`: one `<app>.json` per deployment in flight (one per app at a time, the
 * deployments queue sees to it) and `reserve`, the held-back space.
 */
export class IntentLog {
  readonly dir: string;
  private readonly reserveFile: string;
  /** A reserve being written again after a deployment used it; `begin` waits for it. */
  private refilling: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'intent');
    this.reserveFile = path.join(this.dir, 'reserve');
  }

  file(app: string): string {
    return path.join(this.dir, `${app}.json`);
  }

  /** Start-up: the directory and the reserve (a full disk then leaves it missing; `begin` retries). */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await this.fillReserve().catch(() => undefined);
  }

  /**
   * Before any switch: the reserve is there (written now if it is not), the intent is on disk
   * (fsync'd; a full disk gets the reserve for it), and on a nearly full disk the reserve is
   * released to this deployment. Throws `IntentRefused` when any of it fails.
   */
  async begin(intent: Intent): Promise<void> {
    try {
      await this.refilling;
      await this.fillReserve();
      await this.writeSlot(intent, 'w').catch(async (err: unknown) => {
        if (!isNoSpace(err) || !(await this.release())) throw err;
        await this.writeSlot(intent, 'w');
      });
      if (await this.lowOnSpace()) await this.release();
    } catch (err) {
      await rm(this.file(intent.app), { force: true }).catch(() => undefined);
      throw new IntentRefused(err);
    }
  }

  /** The hosts answered: the outcome goes into the intent's own blocks (no new space), fsync'd. */
  async decide(intent: Intent, outcome: IntentOutcome): Promise<Intent> {
    const decided = fit(intent, outcome);
    await this.writeSlot(decided, 'r+');
    return decided;
  }

  /**
   * Runs the writes that make the outcome visible (pointers, record, audit line); a full disk gets
   * the reserve and one more try. Once they are done the intent is removed and the reserve written
   * again in the background. When they fail the intent stays for the next start to finish them.
   */
  async settle(app: string, persist: () => Promise<void>): Promise<void> {
    try {
      await persist();
    } catch (err) {
      if (!isNoSpace(err) || !(await this.release())) throw err;
      await persist();
    }
    await this.clear(app);
  }

  /** Forgets an app's intent (its outcome is on disk elsewhere), then refills the reserve in the background. */
  async clear(app: string): Promise<void> {
    await rm(this.file(app), { force: true });
    this.refilling = this.refilling.then(() => this.fillReserve()).catch(() => undefined);
  }

  /** Every intent left on disk (start-up); a torn one (its first write cut short) is returned as undefined by app. */
  async pending(): Promise<{ app: string; intent: Intent | undefined }[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: { app: string; intent: Intent | undefined }[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const intent = await readJsonFile<Intent>(path.join(this.dir, name)).catch(() => undefined);
      out.push({ app: name.slice(0, -'.json'.length), intent: intent && typeof intent.deploymentId === 'string' ? intent : undefined });
    }
    return out;
  }

  /** Writes the reserve when it is missing or short: real blocks (zeros), fsync'd. */
  private async fillReserve(): Promise<void> {
    const size = await stat(this.reserveFile).then((s) => s.size, () => -1);
    if (size === RESERVE_BYTES) return;
    const handle = await open(this.reserveFile, 'w', 0o600);
    try {
      await handle.writeFile(Buffer.alloc(RESERVE_BYTES));
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(this.reserveFile, { force: true });
      throw err;
    }
    await handle.close();
  }

  /** Gives the reserve's space back to the filesystem (for a write that must happen); whether there was one. */
  async release(): Promise<boolean> {
    const had = await stat(this.reserveFile).then(() => true, () => false);
    await rm(this.reserveFile, { force: true });
    return had;
  }

  private async lowOnSpace(): Promise<boolean> {
    const fs = await statfs(this.dir);
    return fs.bavail * fs.bsize < LOW_SPACE_BYTES;
  }

  /** `w` creates the slot at its full size; `r+` overwrites it in place. */
  private async writeSlot(intent: Intent, flags: 'w' | 'r+'): Promise<void> {
    const text = JSON.stringify(intent);
    if (Buffer.byteLength(text) >= INTENT_SLOT_BYTES) throw new Error(`intent of ${intent.app} over ${INTENT_SLOT_BYTES} bytes`);
    const slot = Buffer.alloc(INTENT_SLOT_BYTES, 0x20);
    slot.write(text);
    slot.write('\n', INTENT_SLOT_BYTES - 1);
    const handle = await open(this.file(intent.app), flags, 0o600);
    try {
      await handle.write(slot, 0, slot.length, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** The intent with its outcome, cut to fit the slot: hosts dropped from the end, then the reason shortened. */
function fit(intent: Intent, outcome: IntentOutcome): Intent {
  let decided: Intent & { outcome: IntentOutcome } = { ...intent, outcome };
  const over = (): boolean => Buffer.byteLength(JSON.stringify(decided)) >= INTENT_SLOT_BYTES - 1;
  while (over() && decided.outcome.hosts.length > 0) {
    decided = { ...decided, outcome: { ...decided.outcome, hosts: decided.outcome.hosts.slice(0, Math.floor(decided.outcome.hosts.length / 2)) } };
  }
  while (over() && decided.outcome.reason) {
    decided = { ...decided, outcome: { ...decided.outcome, reason: decided.outcome.reason.slice(0, Math.floor(decided.outcome.reason.length / 2)) } };
  }
  return decided;
}
