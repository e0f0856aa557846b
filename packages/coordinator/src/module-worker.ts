import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

// A worker starts from a small script rather than from a file: the same script serves the
// TypeScript sources (vitest, tsx, the `shoal` bin in a checkout) and the built dist. From sources
// it registers tsx and the "shoal-source" export condition first, as packages/cli/bin/shoal.js does.
// It uses only import(), so it runs as CommonJS or as an ES module (--input-type is inherited).
const BOOT = `
(async () => {
  const { workerData } = await import('node:worker_threads');
  const { createRequire, register } = await import('node:module');
  const { dirname, join } = await import('node:path');
  const { pathToFileURL } = await import('node:url');
  const { entry, fromSource } = workerData.boot;
  if (fromSource) {
    // tsx's own loader registers itself in the main thread only on Node 20, so register its ESM
    // hooks here through its API (the "import" build of tsx/esm/api, found from the sources).
    const require = createRequire(entry);
    const tsxPackage = require.resolve('tsx/package.json');
    const api = require(tsxPackage).exports['./esm/api'].import.default;
    (await import(pathToFileURL(join(dirname(tsxPackage), api)).href)).register();
    const hook = 'export function resolve(specifier, context, next) { return next(specifier, { ...context, conditions: [...context.conditions, "shoal-source"] }); }';
    register('data:text/javascript,' + encodeURIComponent(hook));
  }
  await import(fromSource ? pathToFileURL(entry).href : entry);
})().catch((error) => setImmediate(() => { throw error; }));
`;

/**
 * Starts a worker thread running the module at `entry` (a `.ts` source file under vitest and tsx,
 * a `.js` file of dist otherwise: callers pick the sibling with their own `import.meta.url`'s
 * extension). The worker sees `data` as its `workerData`, plus a `boot` field this function uses.
 */
export function startModuleWorker(entry: URL, data: object = {}, options: { readonly resourceLimits?: ResourceLimits } = {}): Worker {
  const fromSource = entry.href.endsWith('.ts');
  return new Worker(BOOT, { eval: true, workerData: { ...data, boot: { entry: fromSource ? fileURLToPath(entry) : entry.href, fromSource } }, ...options });
}
