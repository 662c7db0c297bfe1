import { defineConfig } from 'vitest/config';

/**
 * `npm run test:resilience`: the long fault, fuzz and load runs of issue 8 (test/resilience/).
 * Files run one after another (they load the machine and some restart Redis or PostgreSQL), with
 * FT_RESILIENCE=1 so their suites are not skipped; in the default run (`npm test`) they are.
 */
export default defineConfig({
  test: {
    include: ['test/resilience/**/*.test.ts'],
    env: { FT_RESILIENCE: '1' },
    fileParallelism: false,
    testTimeout: 6 * 3600_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
