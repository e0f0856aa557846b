/**
 * Tiny benchmark harness. Machines here are noisy, so every figure is reported as a ratio against a
 * baseline measured in the same run, interleaved with the candidate, never as an absolute time.
 * Every bench also checks that what it timed computed the right result (`check`): a wrong result
 * exits 1, a missed speed target only prints MISS (docs/benchmarks.md).
 */
import type { UpdateMessage } from '@shoal/protocol';

/**
 * Quick mode (`SHOAL_BENCH_QUICK=1`, or `--quick` on the command line): every benchmark runs tiny
 * sizes and timing budgets, a few seconds each, but all of its correctness checks. `npm test` runs
 * every benchmark this way (test/bench-quick.test.ts) so none rots; its ratios mean nothing.
 */
export const QUICK = process.env['SHOAL_BENCH_QUICK'] === '1' || process.argv.includes('--quick');

/** `full` normally, `quick` in quick mode: one place per bench where its sizes shrink. */
export function sized<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

/**
 * A correctness check of a benchmark. A failed one prints `CHECK FAILED: <what>` on stderr and sets
 * the process's exit code to 1 at once, so the run fails however the bench ends; the bench goes on,
 * so every failed check is printed. Returns `ok`. A timing that misses its target is not a failure
 * (it prints `MISS`); a wrong result is.
 */
export function check(ok: boolean, what: string): boolean {
  if (!ok) {
    console.error(`CHECK FAILED: ${what}`);
    process.exitCode = 1;
  }
  return ok;
}

/** Ends a bench's output with one line saying whether any correctness check failed (the exit code is already set by `check`). */
export function exitOnFailedChecks(): void {
  if (process.exitCode === 1) console.error('correctness check(s) failed: exit code 1');
}

/** The first index where `a` and `b` differ (a length mismatch counts at the shorter length), or −1. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : length;
}

/** The largest |actual[i] − expected[i]| and the largest |expected[i]|: for float results checked within a relative tolerance. */
export function worstDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): { worst: number; largest: number } {
  let worst = actual.length === expected.length ? 0 : Number.POSITIVE_INFINITY;
  let largest = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    largest = Math.max(largest, Math.abs(expected[i]!));
  }
  return { worst, largest };
}

/** Checks that two vectors hold exactly the same values (bit for bit, NaN equal to NaN), naming the first difference. */
export function checkSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): boolean {
  const at = firstDifference(actual, expected);
  return check(at === -1, at === -1 ? what : `${what}: first difference at index ${at} (${actual[at]} vs ${expected[at]}; lengths ${actual.length} and ${expected.length})`);
}

export interface Timing {
  /** Median milliseconds per call. */
  readonly medianMs: number;
  readonly samples: number;
}

/** Runs `fn` repeatedly (after one warm-up call) for about `budgetMs`, returning the median time. Quick mode: one timed call. */
export async function time(fn: () => unknown | Promise<unknown>, budgetMs = 1_000, minSamples = 5): Promise<Timing> {
  if (QUICK) [budgetMs, minSamples] = [0, 1];
  await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minSamples || performance.now() - start < budgetMs) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
    if (samples.length >= 1_000) break;
  }
  samples.sort((a, b) => a - b);
  return { medianMs: samples[Math.floor(samples.length / 2)]!, samples: samples.length };
}

/** Times candidate and baseline alternately (so drift hits both), returning both medians. */
export async function compare(
  candidate: () => unknown | Promise<unknown>,
  baseline: () => unknown | Promise<unknown>,
  rounds = 5,
  budgetMs = 300,
): Promise<{ candidate: Timing; baseline: Timing }> {
  const c: number[] = [];
  const b: number[] = [];
  if (QUICK) rounds = 1;
  for (let i = 0; i < rounds; i++) {
    b.push((await time(baseline, budgetMs, 3)).medianMs);
    c.push((await time(candidate, budgetMs, 3)).medianMs);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return { candidate: { medianMs: median(c), samples: rounds }, baseline: { medianMs: median(b), samples: rounds } };
}

/** Prints one result line: `name: ratio× (target …) [ok|MISS]`, plus the raw medians for context. */
export function report(name: string, ratio: number, detail: string, target?: { op: '>=' | '<='; value: number }): void {
  let verdict = '';
  if (target) {
    const ok = target.op === '>=' ? ratio >= target.value : ratio <= target.value;
    verdict = ` (target ${target.op} ${target.value}×) ${ok ? 'ok' : 'MISS'}`;
  }
  const quick = QUICK ? ' (quick mode: not a measurement)' : '';
  console.log(`${name}: ${ratio.toFixed(3)}×${verdict}${quick}  [${detail}]`);
}

/** A realistic `update` message around `delta` (a coordinator model version is `<12 hex run id>:<round>`). */
export function updateMessage(delta: Float32Array): UpdateMessage {
  return {
    type: 'update',
    round: 123,
    modelVersion: '3f9a1c07be42:122',
    numExamples: 600,
    delta,
    metrics: { loss: 0.3141592653589793, accuracy: 0.9183333333333333, trainMs: 1234.5678 },
  };
}
