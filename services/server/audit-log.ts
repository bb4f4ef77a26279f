import { appendFile, open } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';

/** One line of `<dataDir>/audit.log` (JSON lines, append-only). */
export interface AuditEntry {
  /** The token's name. */
  who: string;
  what: 'upload' | 'plan' | 'activate' | 'rollback' | 'auto-rollback' | 'push' | 'reconcile' | 'mark-bad' | 'prune' | 'token-created' | 'retire';
  app?: string;
  version?: string;
  sha256?: string;
  deploymentId?: string;
  /** created, exists, rejected, succeeded, failed, rolled-back, ... */
  outcome: string;
  code?: string;
  reason?: string;
}

/**
 * Append-only: each entry is one `appendFile` (O_APPEND), so concurrent writers never interleave
 * inside a line, and a crash loses at most the line being written.
 *
 * The audit log records what happened; it never decides it. An entry that cannot be appended (disk
 * full, the file made unwritable) leaves the action and its answer as they are (a deployment that
 * went live is reported live) and is logged at error level, whole, so the record is in the
 * service's log instead; `failures` counts them.
 */
export class AuditLog {
  failures = 0;

  constructor(private readonly file: string, private readonly log: FastifyBaseLogger) {}

  async append(entry: AuditEntry): Promise<void> {
    const line = JSON.stringify({ when: new Date().toISOString(), ...entry }) + '\n';
    try {
      await appendFile(this.file, line, { mode: 0o600 });
    } catch (err) {
      this.failures += 1;
      this.log.error({ err, audit: entry, file: this.file }, 'audit log append failed; the entry is only in this log line');
    }
  }

  /**
   * Whether one of the last lines (the final `tailBytes`) names this deployment: start-up recovery
   * writes a deployment's line only when the crash came before it.
   */
  async mentions(deploymentId: string, tailBytes = 1024 * 1024): Promise<boolean> {
    const handle = await open(this.file, 'r').catch(() => undefined);
    if (!handle) return false;
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, tailBytes);
      const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
      return buffer.includes(`"deploymentId":${JSON.stringify(deploymentId)}`);
    } finally {
      await handle.close();
    }
  }
}
