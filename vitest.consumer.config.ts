import { defineConfig } from 'vitest/config';

// The consumer test (test/consumer): packs the published packages, installs the tarballs into a
// fresh app outside the repository and runs it there: `npm run test:consumer`, the last step of
// `npm test`. Deliberately without the "shoal-source" condition: nothing here may run the sources.
export default defineConfig({
  test: {
    include: ['test/consumer/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 420_000,
    pool: 'forks',
  },
});
