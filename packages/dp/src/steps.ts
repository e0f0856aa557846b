// Client-side update steps. They have the shape of @shoal/client's `UpdateStep` (a function from an
// update to a new update) without depending on the client: any object with a `delta` goes in, the
// same object with a new `delta` comes out, every other field passed through.
import { checkClipNorm, checkNoiseMultiplier, requireNumber } from './checks.js';
import { addGaussianNoise, clipToNorm } from './clip.js';
import { cryptoNoise, type NoiseSource } from './random.js';

/** What a DP step needs of an update: its flat delta. */
export interface DeltaUpdate {
  readonly delta: Float32Array;
}

/** A pure update step: returns a new update, never mutates its input. */
export type DeltaStep = <U extends DeltaUpdate>(update: U) => U;

/**
 * Clips each update's delta to L2 ≤ clipNorm (see {@link clipToNorm}): the first step of a private
 * client pipeline (clip, then noise; under secure aggregation the client then encodes and masks the
 * result). For adaptive clipping, build a new step each round with that round's C; the client
 * reports `unclippedBit(l2Norm(delta), C)` itself.
 */
export function clipStep(clipNorm: number): DeltaStep {
  checkClipNorm(clipNorm);
  return (update) => ({ ...update, delta: clipToNorm(update.delta, clipNorm).clipped });
}

export interface DistributedNoiseOptions {
  /** z: the noise multiplier the *sum* must carry. Required. */
  readonly noiseMultiplier: number;
  /** C: the clip norm applied before this step. Required. */
  readonly clipNorm: number;
  /** t: the fewest clients whose noisy updates the sum is guaranteed to contain (the SecAgg threshold). Required, integer ≥ 1. */
  readonly minSurvivors: number;
  /** Default {@link cryptoNoise}(). */
  readonly noise?: NoiseSource;
}

/**
 * Distributed DP for secure aggregation, where no one sees an individual update and no trusted
 * party can add the noise: each client adds N(0, (z·C)²/t) per coordinate to its clipped delta, so
 * a sum over ≥ t clients carries Gaussian noise of variance ≥ (z·C)², the central-DP amount.
 *
 * Caveats, to be stated wherever this is used:
 * - **Survivors.** If fewer than t clients' updates reach the sum, it carries less noise than the
 *   accountant assumes. The coordinator must abort such rounds (SecAgg's threshold ≥ t does this).
 *   Colluding or dishonest clients can remove their own share, so count only honest survivors.
 * - **Discretization.** SecAgg encodes the noisy values in fixed point with stochastic rounding.
 *   The rounded sum is not exactly a sum of Gaussians, so the RDP analysis holds only
 *   approximately. The rigorous form samples the noise already on the integer grid: a distributed
 *   discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021) or Skellam (Agarwal, Kairouz, Liu, NeurIPS 2021).
 * - **Modular wrap.** The sum lives in Z_{2^32}. Noise widens every coordinate's range beyond
 *   [−C, C], and a sum that overflows the encoding range wraps around and destroys the aggregate.
 *   Clamping before encoding avoids the wrap but biases the update and breaks the Gaussian tail.
 *   The encoding must leave headroom for the noise (several standard deviations of the summed
 *   noise, z·C·√(n/t) for n clients).
 */
export function distributedNoiseStep(options: DistributedNoiseOptions): DeltaStep {
  const noiseMultiplier = checkNoiseMultiplier(options.noiseMultiplier);
  const clipNorm = checkClipNorm(options.clipNorm);
  const minSurvivors = requireNumber('minSurvivors', options.minSurvivors, 'an integer >= 1', (v) => Number.isSafeInteger(v) && v >= 1);
  const noise = options.noise ?? cryptoNoise();
  const std = distributedNoiseStd(noiseMultiplier, clipNorm, minSurvivors);
  return (update) => ({ ...update, delta: addGaussianNoise(update.delta, std, noise) });
}

/** Each client's per-coordinate noise std in distributed DP: z·C/√t. */
export function distributedNoiseStd(noiseMultiplier: number, clipNorm: number, minSurvivors: number): number {
  return (noiseMultiplier * clipNorm) / Math.sqrt(minSurvivors);
}
