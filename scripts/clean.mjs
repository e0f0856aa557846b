// `npm run clean`: removes every package's build output (packages/*/dist), so the next build starts
// from nothing. `tsc -b --clean` would not do: it never deletes what a since-removed source emitted,
// and `npm pack` would publish that stale file.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packagesDir = fileURLToPath(new URL('../packages/', import.meta.url));
for (const name of readdirSync(packagesDir)) {
  const dist = join(packagesDir, name, 'dist');
  if (existsSync(dist)) rmSync(dist, { recursive: true, force: true });
}
