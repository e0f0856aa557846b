// Central DP-FedAvg (McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent
// Language Models", ICLR 2018): a trusted coordinator sums the clients' clipped updates, adds
// Gaussian noise calibrated to one client's contribution (the clip norm C), and divides by the
// *expected* cohort size rather than the actual one, so the denominator itself reveals nothing.
import { checkClipNorm, checkNoiseMultiplier, checkPositive } from './checks.js';
import { addGaussianNoise } from './clip.js';
import type { NoiseSource } from './random.js';

export interface CentralDpOptions {
  /** z: noise std on the sum is z·C. Required; 0 turns the noise off (and with it the privacy). */
  readonly noiseMultiplier: number;
  /** C: every client update is clipped to L2 ≤ C, so one client moves the sum by at most C. Required. */
  readonly clipNorm: number;
  /** m: the expected cohort size (clientsPerRound, or q·N under Poisson sampling). Required, > 0. */
  readonly expectedClients: number;
}

/** Validates central DP options, naming the bad key under `prefix` (e.g. `dp.clipNorm`). */
export function checkCentralDpOptions(options: CentralDpOptions, prefix = ''): CentralDpOptions {
  return {
    noiseMultiplier: checkNoiseMultiplier(options.noiseMultiplier, `${prefix}noiseMultiplier`),
    clipNorm: checkPositive(options.clipNorm, `${prefix}clipNorm`),
    expectedClients: checkPositive(options.expectedClients, `${prefix}expectedClients`),
  };
}

/** The std of the Gaussian added to the *sum* of clipped updates: z·C. */
export function sumNoiseStd(noiseMultiplier: number, clipNorm: number): number {
  return noiseMultiplier * clipNorm;
}

/**
 * The noisy sum Σ clipped_i + N(0, (z·C)²) per coordinate, as a new array. `sum` must be the sum
 * of updates each clipped to L2 ≤ C with weight 1; it is only read.
 */
export function noisySum(sum: Float64Array, options: Pick<CentralDpOptions, 'noiseMultiplier' | 'clipNorm'>, noise: NoiseSource): Float64Array {
  const noiseMultiplier = checkNoiseMultiplier(options.noiseMultiplier);
  const clipNorm = checkClipNorm(options.clipNorm);
  return addGaussianNoise(sum, sumNoiseStd(noiseMultiplier, clipNorm), noise);
}

/**
 * The fixed-denominator estimate of the mean update: `sum / expectedClients`. Dividing by the
 * actual count would need the count to be private too; the fixed denominator is unbiased under
 * Poisson sampling and leaves the noise on the mean at z·C/m per coordinate.
 */
export function fixedDenominatorMean(sum: Float64Array, expectedClients: number): Float64Array {
  const m = checkPositive(expectedClients, 'expectedClients');
  const mean = new Float64Array(sum.length);
  for (let i = 0; i < mean.length; i++) mean[i] = sum[i]! / m;
  return mean;
}
