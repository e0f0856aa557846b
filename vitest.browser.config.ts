import { defineConfig } from 'vitest/config';

// Real-Chromium tests (playwright-core driving /usr/bin/chromium): `npm run test:browser`.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
