/**
 * Exact error bounds for tests that compare a model the coordinator computed with one the test
 * computed itself, so a tolerance is derived, not guessed.
 */

const scratch = new DataView(new ArrayBuffer(4));

/**
 * The gap between the float32 `x` (rounded to float32 first) and the next float32 away from zero:
 * the unit in the last place at x's binade, read off its bit pattern so no logarithm can misround.
 */
export function float32Ulp(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`float32Ulp needs a finite number, got ${x}`);
  const magnitude = Math.abs(Math.fround(x));
  if (magnitude === 3.4028234663852886e38) return 2 ** 104; // the largest float32: its binade's ulp
  scratch.setFloat32(0, magnitude);
  scratch.setUint32(0, scratch.getUint32(0) + 1);
  return scratch.getFloat32(0) - magnitude;
}

/** What a SecAgg round's result is compared with: its parameters and the cohort's total weight. */
export interface SecAggMeanBoundInput {
  /** Clients whose inputs are in the sum (|U3|). */
  readonly count: number;
  /** The round's fixed-point scale (steps per unit). */
  readonly scale: number;
  /** Every weighted value was clamped to ±bound before encoding. */
  readonly bound: number;
  /** Σ weights of the clients in the sum. */
  readonly totalWeight: number;
}

/**
 * The largest |got − expected| a correct SecAgg FedAvg round can show at one coordinate, where
 * `got` is the float32 global weight the coordinator produced and `expected` = w + Σ wᵢ·xᵢ / Σ wᵢ
 * computed by the test in float64:
 * - decoding: each of `count` inputs is off by less than one step 1/scale (docs/secagg.md,
 *   "Encoding"), so the decoded weighted sum is within count/scale, the mean within
 *   count/scale/totalWeight;
 * - the coordinator rounds w + mean to float32 once: at most half a float32 ulp of the result
 *   (the ulp above |got| is the larger one when got sits on a power of two);
 * - float64 rounding on both sides: the test's sum of `count` terms of size ≤ bound and the
 *   decoder's (word/scale − count·bound) each lose at most (count + 2)·ε·count·bound before the
 *   division by the total weight, and each final addition of w loses ε·|result| (≤ 2ε·|got|).
 */
export function secAggMeanBound(input: SecAggMeanBoundInput, got: number): number {
  const { count, scale, bound, totalWeight } = input;
  const decoding = count / scale / totalWeight;
  const float32Rounding = float32Ulp(got) / 2;
  const float64Rounding = (Number.EPSILON * (count + 2) * count * bound) / totalWeight + 2 * Number.EPSILON * (Math.abs(got) + decoding);
  return decoding + float32Rounding + float64Rounding;
}
