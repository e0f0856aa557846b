// Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, "Differentially Private Learning with
// Adaptive Clipping", NeurIPS 2021), following tensorflow/privacy's QuantileEstimatorQuery
// (tensorflow_privacy/privacy/dp_query/quantile_estimator_query.py): the clip norm C tracks the
// γ-quantile of the clients' update norms, estimated privately from one bit per client.
import { ShoalError } from '@shoal/protocol';
import { checkClipNorm, checkCount, checkNoiseMultiplier, checkPositive, requireNumber } from './checks.js';
import { ADAPTIVE_CLIP_DEFAULTS, checkTargetQuantile, countNoiseTooSmall, defaultCountNoiseStd } from './config.js';
import type { NoiseSource } from './random.js';

export interface AdaptiveClippingOptions {
  /** m: the expected number of reporting clients per round; the count is divided by it. Required. */
  readonly expectedClients: number;
  /** γ: the quantile of update norms C should track. Default 0.5, the median (`ADAPTIVE_CLIP_DEFAULTS`). */
  readonly targetQuantile?: number;
  /** η. Default 0.2 (`ADAPTIVE_CLIP_DEFAULTS`). */
  readonly learningRate?: number;
  /** 'geometric' (C ← C·exp(−η(b̄ − γ)), for norms spanning orders of magnitude) or 'arithmetic' (C ← C − η(b̄ − γ)). Default 'geometric'. */
  readonly update?: 'geometric' | 'arithmetic';
  /** σ_b: std of the Gaussian noise on the count of unclipped clients. Default m/20 (`defaultCountNoiseStd`, Andrew et al.). 0 means no noise. */
  readonly countNoiseStd?: number;
}

/** Adaptive clipping settings with every default filled in. */
export interface AdaptiveClipping {
  readonly expectedClients: number;
  readonly targetQuantile: number;
  readonly learningRate: number;
  readonly update: 'geometric' | 'arithmetic';
  readonly countNoiseStd: number;
}

/** Checks the options and fills in the defaults. */
export function adaptiveClipping(options: AdaptiveClippingOptions): AdaptiveClipping {
  const expectedClients = checkPositive(options.expectedClients, 'adaptiveClipping.expectedClients');
  const update = options.update ?? 'geometric';
  if (update !== 'geometric' && update !== 'arithmetic') {
    throw new ShoalError('INVALID_CONFIG', `adaptiveClipping.update must be "geometric" or "arithmetic", got ${JSON.stringify(update)}`);
  }
  return {
    expectedClients,
    targetQuantile: checkTargetQuantile(options.targetQuantile ?? ADAPTIVE_CLIP_DEFAULTS.targetQuantile, 'adaptiveClipping.targetQuantile'),
    learningRate: checkPositive(options.learningRate ?? ADAPTIVE_CLIP_DEFAULTS.learningRate, 'adaptiveClipping.learningRate'),
    update,
    countNoiseStd: checkNoiseMultiplier(options.countNoiseStd ?? defaultCountNoiseStd(expectedClients), 'adaptiveClipping.countNoiseStd'),
  };
}

/**
 * The bit a client reports: 1 when its update was *not* clipped, ‖Δ‖ ≤ C. A norm equal to C counts
 * as unclipped ("below the estimate"), as in tensorflow/privacy's `record <= current_estimate`.
 */
export function unclippedBit(norm: number, clipNorm: number): 0 | 1 {
  return norm <= clipNorm ? 1 : 0;
}

/** What the coordinator learns about the round's bits: their sum and how many clients reported. */
export interface UnclippedCount {
  /** Σ b_i over the reporting clients. */
  readonly unclipped: number;
  /** How many clients reported a bit. */
  readonly reports: number;
}

export interface ClipNormUpdate {
  /** The clip norm for the next round. */
  readonly clipNorm: number;
  /** b̄: the noised fraction of unclipped clients, clamped to [0, 1]. */
  readonly unclippedFraction: number;
}

/**
 * One step of the quantile estimator. As tensorflow/privacy does, each bit is centred to b_i − ½
 * (so one client changes the sum by at most ½), the centred sum gets N(0, σ_b²) noise, and
 * b̄ = noisySum/m + ½, clamped to [0, 1]. When exactly m clients report this is Σb_i/m plus noise.
 * Then C ← C·exp(−η(b̄ − γ)) (geometric) or C ← C − η(b̄ − γ) (arithmetic).
 *
 * Deviation: an arithmetic step that would go below 0 stops at 0 (a negative clip norm means
 * nothing; tensorflow/privacy lets the estimate go negative).
 *
 * @param clipNorm the current C (finite, ≥ 0; > 0 for geometric updates, which could never leave 0).
 * @param noise required when `countNoiseStd` > 0.
 */
export function nextClipNorm(clipNorm: number, count: UnclippedCount, config: AdaptiveClipping, noise?: NoiseSource): ClipNormUpdate {
  checkClipNorm(clipNorm);
  if (config.update === 'geometric' && clipNorm === 0) {
    throw new ShoalError('INVALID_CONFIG', 'geometric adaptive clipping cannot start from clipNorm 0 (it would stay 0): start from a positive clip norm');
  }
  const reports = checkCount(count.reports, 'reports');
  const unclipped = requireNumber('unclipped', count.unclipped, `an integer in [0, reports = ${reports}]`, (v) => Number.isInteger(v) && v >= 0 && v <= reports);
  let centredSum = unclipped - reports / 2;
  if (config.countNoiseStd > 0) {
    if (noise === undefined) throw new RangeError('nextClipNorm needs a noise source when countNoiseStd > 0');
    centredSum += config.countNoiseStd * noise.gaussian();
  }
  const unclippedFraction = Math.min(1, Math.max(0, centredSum / config.expectedClients + 0.5));
  const step = config.learningRate * (unclippedFraction - config.targetQuantile);
  const next = config.update === 'geometric' ? clipNorm * Math.exp(-step) : Math.max(0, clipNorm - step);
  return { clipNorm: next, unclippedFraction };
}

/**
 * The noise multiplier left for the updates when the unclipped count also spends privacy, so that
 * the two Gaussian queries together cost the same as one with multiplier z (Andrew et al. 2021,
 * Sec. 3.1): z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2). The count has sensitivity ½, hence the 2σ_b.
 * Example: z = 1, σ_b = 5 → 1.005037815259212. z = 0 (no DP) gives 0.
 *
 * Throws INVALID_CONFIG when z ≥ 2σ_b: the count alone would then cost the whole budget.
 */
export function splitNoiseMultiplier(noiseMultiplier: number, countNoiseStd: number): number {
  const z = checkNoiseMultiplier(noiseMultiplier);
  const countStd = checkNoiseMultiplier(countNoiseStd, 'countNoiseStd');
  if (z === 0) return 0;
  if (countNoiseTooSmall(z, countStd)) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `noiseMultiplier ${z} needs countNoiseStd > ${z / 2} (it is ${countStd}): raise countNoiseStd or expectedClients, or lower noiseMultiplier`,
    );
  }
  return (z ** -2 - (2 * countStd) ** -2) ** -0.5;
}
