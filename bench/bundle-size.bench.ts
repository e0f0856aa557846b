// Size of the browser bundle of @shoal/client: Shoal's own code, without tfjs (which a page loads
// once for any ML use, and which apps often already ship), gzipped at level 9 as a server would.
// Correctness (exit 1 on failure): both bundles are built and non-empty, the one without tfjs is
// the smaller, and gzip shrinks each (a build that silently dropped code would show here).
// Target (browser-client issue): ≤ 60 kB gzipped, reported as size / 60 kB ≤ 1×. The full bundle,
// tfjs included, is printed for context. Builds into a temporary directory, so dist/ is untouched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildBrowserBundles } from '../scripts/build-browser.js';
import { check, report } from './lib.js';

const TARGET_GZIP_BYTES = 60 * 1024;

const outDir = mkdtempSync(path.join(tmpdir(), 'shoal-bundle-size-'));
try {
  const { full, noTfjs } = await buildBrowserBundles(outDir);
  for (const [name, bundle] of [['without tfjs', noTfjs], ['with tfjs', full]] as const) {
    check(bundle.bytes > 0 && bundle.gzipBytes > 0 && bundle.gzipBytes < bundle.bytes, `the bundle ${name} is built: ${bundle.bytes} B minified, ${bundle.gzipBytes} B gzipped`);
  }
  check(noTfjs.bytes < full.bytes, `the bundle without tfjs (${noTfjs.bytes} B) is smaller than the one with it (${full.bytes} B)`);
  const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
  report('browser bundle without tfjs, gzipped / 60 kB', noTfjs.gzipBytes / TARGET_GZIP_BYTES, `${kB(noTfjs.gzipBytes)} gzipped, ${kB(noTfjs.bytes)} minified`, { op: '<=', value: 1 });
  console.log(`browser bundle with tfjs: ${kB(full.gzipBytes)} gzipped, ${kB(full.bytes)} minified (informative)`);
} finally {
  rmSync(outDir, { recursive: true, force: true });
}
