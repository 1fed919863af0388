import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Probes Postgres, Redis and ../shared/tools once per run; prints one line for each one missing.
    globalSetup: ['tests/helpers/services.ts'],
    // Integration suites share one Postgres/Redis and real files: run files one at a time per worker.
    pool: 'forks',
    maxWorkers: 2,
  },
});
