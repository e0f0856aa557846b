import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Tests import `@shoal/*` from their TypeScript sources: the "shoal-source" condition listed first
 * in each package's exports (tsconfig.base.json's customConditions does the same for tsc), then
 * Vitest's own defaults (Vite's server conditions without "module"). Vitest also passes these to
 * its worker processes (`--conditions`), so Node resolves the same way inside them. The built
 * packages are tested by test/consumer (vitest.consumer.config.ts).
 */
export const SOURCE_CONDITIONS = ['shoal-source', ...defaultServerConditions.filter((condition) => condition !== 'module')];

export default defineConfig({
  resolve: { conditions: SOURCE_CONDITIONS },
  ssr: { resolve: { conditions: SOURCE_CONDITIONS } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Real-Chromium tests run with `npm run test:browser` (vitest.browser.config.ts), the consumer
    // test of the packed packages with `npm run test:consumer` (vitest.consumer.config.ts).
    exclude: ['**/node_modules/**', 'test/browser/**', 'test/consumer/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
