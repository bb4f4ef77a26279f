import { defineConfig } from 'vitest/config';

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
  },
});
