import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const repo = path.dirname(fileURLToPath(import.meta.url));

// Tests start real PM2 daemons, servers and child processes; on a 2-core CI machine keep the
// file-level parallelism modest and the timeouts generous (waits inside tests have their own).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Test apps live in temp directories: Node loads them itself, as in a worker. Run by vitest's
    // module runner, an ES module app would bypass the runtime's loader hooks.
    server: { deps: { external: [new RegExp(`^(?!${escape(repo + path.sep)})`)] } },
  },
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
