import { SECAGG_LIMITS, ShoalError } from '@shoal/protocol';
import type { SecAggRoundConfig } from '@shoal/protocol';
import { checkEncoding, chooseScale } from './encoding.js';

/** Everything both sides of one SecAgg round agree on. */
export interface SecAggParams {
  readonly mode: 'secagg' | 'secagg+';
  /** Clients selected for the round (indices 1..cohortSize). */
  readonly cohortSize: number;
  /** Parameters of the model; masked inputs have numParams + 1 words (the weight last). */
  readonly numParams: number;
  /** t: shares needed to reconstruct a secret, and the fewest clients a round can finish with. */
  readonly threshold: number;
  /** k: neighbourhood size counting the client itself; the cohort size for full SecAgg. */
  readonly degree: number;
  /** Weighted values are clamped to [−bound, bound]. */
  readonly bound: number;
  /** Fixed-point steps per unit (see encoding.ts). */
  readonly scale: number;
  /** The largest weight one client may send. */
  readonly maxWeight: number;
}

export interface DeriveSecAggParamsOptions {
  readonly mode: 'secagg' | 'secagg+';
  readonly cohortSize: number;
  readonly numParams: number;
  /**
   * Fraction of a neighbourhood that may drop out after sharing and the round still finishes.
   * Must be < 0.5 (see `deriveSecAggParams`). Default 0.3.
   */
  readonly maxDropout?: number;
  /** t; derived when absent. */
  readonly threshold?: number;
  /** k; derived when absent (the cohort size for full SecAgg). */
  readonly degree?: number;
  readonly bound: number;
  readonly maxWeight: number;
  /** Bits kept free in the 32-bit sums (see `chooseScale`). Default 0. */
  readonly headroomBits?: number;
}

/**
 * The SecAgg+ degree for a cohort of n: the smallest odd k ≥ 3·log2 n, at most n.
 *
 * Why 3·log2 n: the ring stays connected after dropouts unless (k − 1)/2 consecutive clients in
 * the random order all drop; with dropout rate δ that happens somewhere with probability about
 * n·δ^((k−1)/2) = n^(1 + 1.5·log2 δ), which is ≈ n^−1.6 for δ = 0.3 (8·10^−5 at n = 500) and falls as n
 * grows. Google's FCP searches for the smallest (k, t) meeting 40-bit security and 20-bit
 * correctness bounds against a given corrupt and dropout rate (its test pins n = 10,000,
 * 5 % corrupt, 33 % dropout → k = 86, t = 29); this rule is simpler and makes no claim against
 * colluding clients beyond the threshold argument below.
 */
export function secAggPlusDegree(cohortSize: number): number {
  const atLeast = Math.ceil(3 * Math.log2(cohortSize));
  const odd = atLeast % 2 === 1 ? atLeast : atLeast + 1;
  return Math.min(cohortSize, Math.max(3, odd));
}

/**
 * Derives (or checks) k and t and chooses the encoding scale for a round.
 *
 * - k: the cohort size for full SecAgg; `secAggPlusDegree(n)` for SecAgg+ (odd unless k = n).
 * - t: the largest threshold that still tolerates maxDropout, t = ⌊(1 − maxDropout)·k⌋, and it
 *   must exceed k/2. The second condition is what makes the honest-client rule sufficient: each
 *   honest holder reveals at most one of b_v and s_v^SK for a client v, and v's shares are held by
 *   k clients, so a coordinator that tells some holders "v survived" and others "v dropped" can
 *   never collect t shares of both when 2t > k. A larger t also means more colluding clients are
 *   needed to open one client's secrets.
 * - scale: `chooseScale` for cohortSize clients.
 *
 * Throws ShoalError INVALID_CONFIG, naming the broken rule, when given or derived values do not
 * satisfy 2 ≤ t ≤ k ≤ n, k/2 < t ≤ (1 − maxDropout)·k, k odd for SecAgg+ unless k = n, k = n for
 * full SecAgg, or when the encoding cannot fit (see `chooseScale`).
 */
export function deriveSecAggParams(options: DeriveSecAggParamsOptions): SecAggParams {
  const { mode, cohortSize: n, numParams, maxDropout = 0.3, bound, maxWeight, headroomBits = 0 } = options;
  if (mode !== 'secagg' && mode !== 'secagg+') invalid(`mode must be 'secagg' or 'secagg+', got ${String(mode)}`);
  if (!Number.isSafeInteger(n) || n < 3 || n > SECAGG_LIMITS.maxIndex) invalid(`cohortSize must be an integer in 3..${SECAGG_LIMITS.maxIndex}, got ${n}`);
  if (!Number.isSafeInteger(numParams) || numParams < 1) invalid(`numParams must be an integer ≥ 1, got ${numParams}`);
  if (!(maxDropout >= 0 && maxDropout < 0.5)) invalid(`maxDropout must be in [0, 0.5): a threshold above half the neighbourhood cannot tolerate more, got ${maxDropout}`);

  const degree = options.degree ?? (mode === 'secagg' ? n : secAggPlusDegree(n));
  if (!Number.isSafeInteger(degree) || degree < 2 || degree > n) invalid(`degree must be an integer in 2..${n} (the cohort size), got ${degree}`);
  if (mode === 'secagg' && degree !== n) invalid(`full SecAgg uses every client as a neighbour: degree must be the cohort size ${n}, got ${degree}`);
  if (mode === 'secagg+' && degree < n && degree % 2 === 0) invalid(`a SecAgg+ degree below the cohort size must be odd (the client and (k − 1)/2 on each side), got ${degree}`);

  const tolerated = Math.floor((1 - maxDropout) * degree + 1e-9); // the epsilon absorbs (1 − 0.3)·10 = 6.999…
  const threshold = options.threshold ?? tolerated;
  if (!Number.isSafeInteger(threshold) || threshold < 2 || threshold > degree) invalid(`threshold must be an integer in 2..${degree} (the degree), got ${threshold}`);
  if (2 * threshold <= degree) {
    invalid(
      `threshold ${threshold} must exceed half the degree ${degree}, or a coordinator that lies about who dropped could collect both secrets of a client` +
        (options.threshold === undefined ? ` (maxDropout ${maxDropout} leaves no such threshold: lower it or enlarge the cohort)` : ''),
    );
  }
  if (threshold > tolerated) {
    invalid(`threshold ${threshold} cannot tolerate maxDropout ${maxDropout} of a neighbourhood of ${degree} (at most ${tolerated}); lower the threshold or maxDropout`);
  }

  const scale = chooseScale({ bound, maxClients: n, maxWeight, headroomBits });
  return { mode, cohortSize: n, numParams, threshold, degree, bound, scale, maxWeight };
}

/**
 * Re-checks params built elsewhere (e.g. restored from a file): the structural rules of
 * `deriveSecAggParams` (without maxDropout) and that the encoding cannot wrap. Throws INVALID_CONFIG.
 */
export function checkSecAggParams(params: SecAggParams): void {
  deriveSecAggParams({ ...params, maxDropout: 0, threshold: params.threshold, degree: params.degree });
  checkEncoding(params, params.cohortSize);
}

/** The `train.secagg` config of one client. */
export function roundConfig(params: SecAggParams, index: number, sessionId: string): SecAggRoundConfig {
  const { mode, threshold, degree, bound, scale, maxWeight } = params;
  return { mode, index, threshold, degree, bound, scale, maxWeight, sessionId };
}

function invalid(message: string): never {
  throw new ShoalError('INVALID_CONFIG', `secagg ${message}`);
}
