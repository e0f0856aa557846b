import { addGaussianNoise, clipToNorm, cryptoNoise, type NoiseSource } from '@shoal/dp';
import type { TrainConfig } from '@shoal/protocol';
import type { LocalUpdate, UpdateStep } from './pipeline.js';

/**
 * The differential-privacy steps a round's train config asks for, in the order DP needs them:
 * clip to `clipNorm` (recording whether the update was within it, for adaptive clipping), then add
 * the client's share of the noise, `noiseStd` per coordinate (distributed DP). They run after the
 * app's own update steps, so no app step can undo them.
 */
export function privacySteps(config: TrainConfig, noise: NoiseSource = cryptoNoise()): UpdateStep[] {
  const steps: UpdateStep[] = [];
  const { clipNorm, noiseStd } = config;
  if (clipNorm !== undefined) {
    steps.push((update) => {
      const { clipped, wasClipped } = clipToNorm(update.delta, clipNorm);
      return { ...update, delta: clipped, unclipped: !wasClipped };
    });
  }
  if (noiseStd !== undefined && noiseStd > 0) {
    steps.push((update) => ({ ...update, delta: addGaussianNoise(update.delta, noiseStd, noise) }));
  }
  return steps;
}

/**
 * Adaptive clipping under secure aggregation: the values a round sums after the update, namely the
 * unclipped bit plus N(0, bitNoiseStd²) (each client's share of the count's noise under distributed
 * DP), or none when the round's config has no `bitNoiseStd`. `RoundPlan.updateValues` counts them.
 */
export function maskedExtras(update: LocalUpdate, config: TrainConfig, noise: NoiseSource = cryptoNoise()): number[] {
  const { bitNoiseStd } = config;
  if (bitNoiseStd === undefined) return [];
  const bit = update.unclipped ? 1 : 0;
  return [bitNoiseStd > 0 ? bit + bitNoiseStd * noise.gaussian() : bit];
}
