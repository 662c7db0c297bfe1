import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests share one Redis and one PostgreSQL; files run in parallel but each uses its own
    // queue prefix / database schema, so they do not see each other's data.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
