import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites share one Postgres/Redis and real files: run files one at a time per worker.
    pool: 'forks',
    maxWorkers: 2,
  },
});
