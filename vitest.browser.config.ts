import { defineConfig } from 'vitest/config';
import { SOURCE_CONDITIONS } from './vitest.config.js';

// Real-Chromium tests (playwright-core driving /usr/bin/chromium): `npm run test:browser`.
// The Node side imports @shoal/* from sources, as in vitest.config.ts.
export default defineConfig({
  resolve: { conditions: SOURCE_CONDITIONS },
  ssr: { resolve: { conditions: SOURCE_CONDITIONS } },
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
