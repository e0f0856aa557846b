/**
 * Tiny benchmark harness. Machines here are noisy, so every figure is reported as a ratio against a
 * baseline measured in the same run, interleaved with the candidate, never as an absolute time.
 */
import type { UpdateMessage } from '@shoal/protocol';

export interface Timing {
  /** Median milliseconds per call. */
  readonly medianMs: number;
  readonly samples: number;
}

/** Runs `fn` repeatedly (after one warm-up call) for about `budgetMs`, returning the median time. */
export async function time(fn: () => unknown | Promise<unknown>, budgetMs = 1_000, minSamples = 5): Promise<Timing> {
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
  console.log(`${name}: ${ratio.toFixed(3)}×${verdict}  [${detail}]`);
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
