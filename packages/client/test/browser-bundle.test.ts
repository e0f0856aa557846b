/**
 * The browser bundle of `@shoal/client` (scripts/build-browser.ts): built with esbuild for
 * `platform: 'browser'`, it must pull in no Node built-in, `ws` or Node-only Shoal module, must
 * be an ES module exporting ShoalClient, and Shoal's own weight (without tfjs) must stay within the
 * 60 kB gzip budget.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinModules } from 'node:module';
import { rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Metafile } from 'esbuild';
import { buildBrowserBundles, type BrowserBundles } from '../../../scripts/build-browser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Inside the repo (dist/ is git-ignored) so the bundle's bare `@tensorflow/tfjs` import resolves when loaded. */
const OUT_DIR = `${ROOT}dist/test-browser-bundle-${process.pid}`;
/** Where Node-only code lives: if any of it is an input, a Node path leaked into the browser graph. */
const NODE_ONLY_INPUTS = [/^node_modules\/ws\//, /^packages\/client\/src\/node\//, /^packages\/secagg\/src\/(node|prg-node|x25519-node)\.ts$/, /^packages\/client\/src\/index\.ts$/];
/** The size budget of Shoal's own browser code (tfjs excluded), gzipped at level 9. */
const GZIP_BUDGET_BYTES = 60 * 1024;

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Every import in the bundle that was not bundled from a file: external, or a Node built-in left as-is. */
function unbundledImports(metafile: Metafile): string[] {
  const found = new Set<string>();
  for (const [file, input] of Object.entries(metafile.inputs)) {
    for (const imported of input.imports) {
      // esbuild's own helpers; '(disabled):x' is an empty stub from a package's "browser" field.
      if (imported.path === '<runtime>' || imported.path.startsWith('(disabled):')) continue;
      if (imported.external || BUILTINS.has(imported.path) || imported.path.startsWith('node:')) found.add(`${imported.path} (from ${file})`);
    }
  }
  return [...found];
}

describe('the browser bundle', () => {
  let bundles: BrowserBundles;

  beforeAll(async () => {
    bundles = await buildBrowserBundles(OUT_DIR);
  });
  afterAll(() => rmSync(OUT_DIR, { recursive: true, force: true }));

  it('is built from the browser entry and common code, with no Node-only module among its inputs', () => {
    for (const built of [bundles.full, bundles.noTfjs]) {
      const inputs = Object.keys(built.metafile.inputs);
      expect(inputs).toContain('packages/client/src/browser/index.ts');
      expect(inputs).toContain('packages/client/src/browser/websocket-transport.ts');
      expect(inputs).toContain('packages/secagg/src/prg.ts');
      expect(inputs.filter((input) => NODE_ONLY_INPUTS.some((pattern) => pattern.test(input)))).toEqual([]);
    }
  });

  it('imports no Node built-in: the full bundle imports nothing, the other only @tensorflow/*', () => {
    expect(unbundledImports(bundles.full.metafile)).toEqual([]);
    const external = unbundledImports(bundles.noTfjs.metafile).map((line) => line.split(' ')[0]!);
    expect(new Set(external)).toEqual(new Set(['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']));
  });

  it('the WASM backend is loaded lazily, not at import time', () => {
    const imports = Object.values(bundles.noTfjs.metafile.inputs).flatMap((input) => input.imports);
    expect(imports.filter((imported) => imported.path === '@tensorflow/tfjs-backend-wasm').map((imported) => imported.kind)).toEqual(['dynamic-import']);
  });

  it('is an ES module exporting ShoalClient, initBrowserBackend and webSocketTransport', async () => {
    for (const built of [bundles.full, bundles.noTfjs]) {
      const output = built.metafile.outputs[Object.keys(built.metafile.outputs).find((file) => file.endsWith('.js'))!]!;
      expect(output.exports).toEqual(expect.arrayContaining(['ShoalClient', 'initBrowserBackend', 'webSocketTransport']));
    }
    // Loading it proves it is valid ESM; the no-tfjs bundle shares this process's tfjs.
    const bundled = (await import(/* @vite-ignore */ pathToFileURL(bundles.noTfjs.file).href)) as Record<string, unknown>;
    expect(typeof bundled['ShoalClient']).toBe('function');
    expect(typeof bundled['webSocketTransport']).toBe('function');
  });

  it(`keeps Shoal's own code (without tfjs) within the ${GZIP_BUDGET_BYTES / 1024} kB gzip budget`, () => {
    const { gzipBytes } = bundles.noTfjs;
    console.log(
      `browser bundle without tfjs: ${(gzipBytes / 1024).toFixed(1)} kB gzipped (${(gzipBytes / GZIP_BUDGET_BYTES).toFixed(2)}× the ${GZIP_BUDGET_BYTES / 1024} kB budget); ` +
        `with tfjs: ${(bundles.full.gzipBytes / 1024).toFixed(1)} kB gzipped`,
    );
    expect(gzipBytes).toBeGreaterThan(1024);
    expect(gzipBytes).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
    expect(bundles.full.gzipBytes).toBeGreaterThan(gzipBytes);
  });
});
