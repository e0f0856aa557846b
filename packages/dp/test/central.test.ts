import { describe, expect, it } from 'vitest';
import { checkCentralDpOptions, fixedDenominatorMean, noisySum, seededNoise, sumNoiseStd } from '../src/index.js';

describe('central DP-FedAvg math', () => {
  it('adds N(0, (zC)^2) to each coordinate of the sum, as a new array', () => {
    const sum = new Float64Array(200_000).fill(3);
    const noisy = noisySum(sum, { noiseMultiplier: 1.5, clipNorm: 2 }, seededNoise(5));
    expect(sum[0]).toBe(3);
    let sumOfSquares = 0;
    for (let i = 0; i < noisy.length; i++) sumOfSquares += (noisy[i]! - 3) ** 2;
    const std = Math.sqrt(sumOfSquares / noisy.length);
    expect(sumNoiseStd(1.5, 2)).toBe(3);
    expect(Math.abs(std - 3) / 3).toBeLessThan(0.01);
  });

  it('with z = 0 leaves the sum unchanged', () => {
    const sum = Float64Array.of(1, -2, 3);
    expect(noisySum(sum, { noiseMultiplier: 0, clipNorm: 1 }, seededNoise(1))).toEqual(sum);
  });

  it('divides by the expected cohort size, not the actual count', () => {
    expect(Array.from(fixedDenominatorMean(Float64Array.of(10, -4), 8))).toEqual([1.25, -0.5]);
    expect(() => fixedDenominatorMean(Float64Array.of(1), 0)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('validates its options, naming the key under the given prefix', () => {
    expect(checkCentralDpOptions({ noiseMultiplier: 1, clipNorm: 0.5, expectedClients: 10 })).toEqual({ noiseMultiplier: 1, clipNorm: 0.5, expectedClients: 10 });
    expect(() => checkCentralDpOptions({ noiseMultiplier: -1, clipNorm: 1, expectedClients: 10 }, 'dp.')).toThrow(/dp\.noiseMultiplier must be/);
    expect(() => checkCentralDpOptions({ noiseMultiplier: 1, clipNorm: 0, expectedClients: 10 }, 'dp.')).toThrow(/dp\.clipNorm must be/);
    expect(() => checkCentralDpOptions({ noiseMultiplier: 1, clipNorm: 1, expectedClients: Number.NaN }, 'dp.')).toThrow(/dp\.expectedClients must be/);
  });
});
