// Runs every benchmark in bench/ (files ending in .bench.ts), each in its own process so one
// benchmark's memory and JIT state cannot skew the next. `npm run bench -- [name] [--quick]`: only
// files whose name contains `name`; `--quick` (or SHOAL_BENCH_QUICK=1) runs each at tiny sizes with
// all its correctness checks (lib.ts). Exits 1 if any bench exits non-zero (a failed check).
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env['SHOAL_BENCH_QUICK'] === '1';
const only = args.find((arg) => !arg.startsWith('--'));
const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts') && (!only || f.includes(only))).sort();
const failed: string[] = [];
for (const file of files) {
  // The load average goes with every figure quoted from a run (docs/benchmarks.md).
  console.log(`\n## ${file} (${new Date().toISOString()}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  const env = quick ? { ...process.env, SHOAL_BENCH_QUICK: '1' } : process.env;
  const result = spawnSync(process.execPath, ['--conditions=shoal-source', '--import', 'tsx', join(here, file)], { stdio: 'inherit', env });
  if (result.status !== 0) {
    failed.push(file);
    console.error(`## ${file} FAILED (exit ${result.status ?? result.signal})`);
  }
}
if (failed.length > 0) console.error(`\n${failed.length} benchmark(s) failed: ${failed.join(', ')}`);
process.exit(failed.length > 0 ? 1 : 0);
