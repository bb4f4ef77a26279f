import { appendFile } from 'node:fs/promises';

/** One line of `<dataDir>/audit.log` (JSON lines, append-only). */
export interface AuditEntry {
  /** The token's name. */
  who: string;
  what: 'upload' | 'plan' | 'activate' | 'rollback' | 'push' | 'mark-bad' | 'prune' | 'token-created' | 'retire';
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
 */
export class AuditLog {
  constructor(private readonly file: string) {}

  async append(entry: AuditEntry): Promise<void> {
    const line = JSON.stringify({ when: new Date().toISOString(), ...entry }) + '\n';
    await appendFile(this.file, line, { mode: 0o600 });
  }
}
