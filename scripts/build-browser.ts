/**
 * Bundles the browser entry of `@shoal/client` as ES modules for pages:
 * - `dist/browser/shoal-client.js`: everything, tfjs included, loadable with `<script type="module">`.
 * - `dist/browser/shoal-client.no-tfjs.js`: `@tensorflow/*` left as imports, for apps that bring
 *   their own tfjs (and for the size benchmark: this is Shoal's own weight).
 * The WASM backend is imported dynamically, so in the full bundle esbuild keeps it in the same file
 * but runs it only when `initBrowserBackend()` asks for it; its `.wasm` binaries are not bundled
 * (see `InitBrowserBackendOptions.wasmPaths`).
 *
 * Bundled from the TypeScript sources (the "shoal-source" export condition), so it needs no package
 * build first. Apps that install `@shoal/client` from npm do not need these files: their bundler
 * picks the package's built browser entry itself (README, "Embedding the client (browser)").
 *
 * Run: `npm run build` (or `node --conditions=shoal-source --import tsx scripts/build-browser.ts`).
 */
import { build, type Metafile } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BROWSER_ENTRY = path.join(ROOT, 'packages/client/src/browser/index.ts');

export interface BuiltBundle {
  readonly file: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  /** esbuild's record of every input file and import, to check what went in. */
  readonly metafile: Metafile;
}

export interface BrowserBundles {
  readonly full: BuiltBundle;
  readonly noTfjs: BuiltBundle;
}

/** Builds both bundles into `outDir` (default `<repo>/dist/browser`). */
export async function buildBrowserBundles(outDir: string = path.join(ROOT, 'dist/browser')): Promise<BrowserBundles> {
  const [full, noTfjs] = await Promise.all([
    bundle(path.join(outDir, 'shoal-client.js'), []),
    bundle(path.join(outDir, 'shoal-client.no-tfjs.js'), ['@tensorflow/*']),
  ]);
  return { full, noTfjs };
}

async function bundle(outfile: string, external: string[]): Promise<BuiltBundle> {
  const result = await build({
    entryPoints: [BROWSER_ENTRY],
    outfile,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['shoal-source', 'browser'],
    external,
    minify: true,
    sourcemap: false,
    metafile: true,
    logLevel: 'silent',
  });
  const code = readFileSync(outfile);
  return { file: outfile, bytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length, metafile: result.metafile };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bundles = await buildBrowserBundles();
  for (const built of [bundles.full, bundles.noTfjs]) {
    console.log(`${path.relative(ROOT, built.file)}: ${(built.bytes / 1024).toFixed(1)} kB, ${(built.gzipBytes / 1024).toFixed(1)} kB gzipped`);
  }
}
