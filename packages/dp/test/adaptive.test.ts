import { describe, expect, it } from 'vitest';
import { adaptiveClipping, nextClipNorm, seededNoise, splitNoiseMultiplier, unclippedBit, type AdaptiveClipping, type NoiseSource } from '../src/index.js';

/** Runs the estimator over the same update norms each round, as tensorflow/privacy's tests do. */
function clipNorms(norms: readonly number[], initial: number, config: AdaptiveClipping, rounds: number, noise?: NoiseSource): number[] {
  const sequence: number[] = [];
  let clipNorm = initial;
  for (let round = 0; round < rounds; round++) {
    const unclipped = norms.reduce((count, norm) => count + unclippedBit(norm, clipNorm), 0);
    clipNorm = nextClipNorm(clipNorm, { unclipped, reports: norms.length }, config, noise).clipNorm;
    sequence.push(clipNorm);
  }
  return sequence;
}

const noiseless = (options: Omit<Parameters<typeof adaptiveClipping>[0], 'expectedClients' | 'countNoiseStd'>) =>
  adaptiveClipping({ expectedClients: 2, countNoiseStd: 0, ...options });

describe('adaptive clipping reproduces tensorflow/privacy quantile_estimator_query_test', () => {
  it('test_target_zero: {8.5, 7.25}, C0 = 10, γ = 0, η = 1, arithmetic', () => {
    const sequence = clipNorms([8.5, 7.25], 10, noiseless({ targetQuantile: 0, learningRate: 1, update: 'arithmetic' }), 5);
    sequence.forEach((c, k) => expect(c).toBeCloseTo([9.0, 8.0, 7.5, 7.0, 7.0][k]!, 12));
  });

  it('test_target_zero_geometric: {5.0, 2.5}, C0 = 16, γ = 0, η = ln 2, geometric', () => {
    const sequence = clipNorms([5.0, 2.5], 16, noiseless({ targetQuantile: 0, learningRate: Math.log(2), update: 'geometric' }), 5);
    sequence.forEach((c, k) => expect(c).toBeCloseTo([8.0, 4.0, 4 / Math.SQRT2, 2.0, 2.0][k]!, 12));
  });

  it('test_target_one: {1.5, 2.75}, C0 = 0, γ = 1, η = 1, arithmetic', () => {
    const sequence = clipNorms([1.5, 2.75], 0, noiseless({ targetQuantile: 1, learningRate: 1, update: 'arithmetic' }), 5);
    sequence.forEach((c, k) => expect(c).toBeCloseTo([1.0, 2.0, 2.5, 3.0, 3.0][k]!, 12));
  });

  it('test_target_one_geometric: {1.5, 3.0}, C0 = 0.5, γ = 1, η = ln 2, geometric', () => {
    const sequence = clipNorms([1.5, 3.0], 0.5, noiseless({ targetQuantile: 1, learningRate: Math.log(2), update: 'geometric' }), 5);
    sequence.forEach((c, k) => expect(c).toBeCloseTo([1.0, 2.0, 2 * Math.SQRT2, 4.0, 4.0][k]!, 12));
  });

  it('test_linspace: 21 norms evenly spaced in [0, 10], σ_b = 0.01, converges to the median 5 ± 0.25 (all four starts)', () => {
    const norms = Array.from({ length: 21 }, (_, k) => Math.fround(k / 2));
    for (const update of ['geometric', 'arithmetic'] as const) {
      for (const start of [1, 10]) {
        const config = adaptiveClipping({ expectedClients: 21, targetQuantile: 0.5, learningRate: 1, update, countNoiseStd: 1e-2 });
        const sequence = clipNorms(norms, start, config, 50, seededNoise(start));
        for (const c of sequence.slice(41)) expect(Math.abs(c - 5)).toBeLessThan(0.25);
      }
    }
  });
});

describe('nextClipNorm', () => {
  it('counts a norm equal to C as unclipped (tensorflow/privacy: record <= estimate)', () => {
    expect(unclippedBit(2, 2)).toBe(1);
    expect(unclippedBit(2.000001, 2)).toBe(0);
  });

  it('centres the bits, so with fewer reports than expected b̄ = Σb/m + (1 − n/m)/2', () => {
    const config = adaptiveClipping({ expectedClients: 10, countNoiseStd: 0 });
    // 4 of 6 reports unclipped: (4 − 3)/10 + 0.5 = 0.6.
    expect(nextClipNorm(1, { unclipped: 4, reports: 6 }, config).unclippedFraction).toBeCloseTo(0.6, 15);
  });

  it('noises the count with N(0, σ_b^2) and clamps b̄ to [0, 1]', () => {
    const config = adaptiveClipping({ expectedClients: 10, countNoiseStd: 2 });
    const fractions = Array.from({ length: 2000 }, (_, seed) => nextClipNorm(1, { unclipped: 5, reports: 10 }, config, seededNoise(seed)).unclippedFraction);
    const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
    const std = Math.sqrt(fractions.reduce((a, b) => a + (b - mean) ** 2, 0) / fractions.length);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(std - 0.2) / 0.2).toBeLessThan(0.06); // σ_b/m
    const extreme = adaptiveClipping({ expectedClients: 1, countNoiseStd: 100 });
    for (let seed = 0; seed < 50; seed++) {
      const { unclippedFraction } = nextClipNorm(1, { unclipped: 1, reports: 1 }, extreme, seededNoise(seed));
      expect(unclippedFraction === 0 || unclippedFraction === 1).toBe(true);
    }
  });

  it('moves C geometrically by exp(−η(b̄ − γ)) with the Andrew et al. defaults γ = 0.5, η = 0.2, σ_b = m/20', () => {
    const config = adaptiveClipping({ expectedClients: 40 });
    expect(config).toEqual({ expectedClients: 40, targetQuantile: 0.5, learningRate: 0.2, update: 'geometric', countNoiseStd: 2 });
    const allClipped = nextClipNorm(1, { unclipped: 0, reports: 40 }, { ...config, countNoiseStd: 0 });
    expect(allClipped.clipNorm).toBeCloseTo(Math.exp(0.1), 15);
  });

  it('stops an arithmetic step at 0 and refuses a geometric start at 0', () => {
    const config = adaptiveClipping({ expectedClients: 2, countNoiseStd: 0, learningRate: 5, update: 'arithmetic' });
    expect(nextClipNorm(1, { unclipped: 2, reports: 2 }, config).clipNorm).toBe(0);
    expect(() => nextClipNorm(0, { unclipped: 0, reports: 2 }, adaptiveClipping({ expectedClients: 2 }), seededNoise(1))).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });

  it('rejects inconsistent counts and bad options', () => {
    const config = adaptiveClipping({ expectedClients: 2, countNoiseStd: 0 });
    expect(() => nextClipNorm(1, { unclipped: 3, reports: 2 }, config)).toThrow(/unclipped must be an integer in \[0, reports = 2\]/);
    expect(() => nextClipNorm(1, { unclipped: 1, reports: 2 }, adaptiveClipping({ expectedClients: 2 }))).toThrow(/needs a noise source/);
    expect(() => adaptiveClipping({ expectedClients: 0 })).toThrow(/adaptiveClipping\.expectedClients/);
    expect(() => adaptiveClipping({ expectedClients: 2, targetQuantile: 1.5 })).toThrow(/adaptiveClipping\.targetQuantile/);
    expect(() => adaptiveClipping({ expectedClients: 2, update: 'cubic' as 'geometric' })).toThrow(/adaptiveClipping\.update/);
  });
});

describe('splitNoiseMultiplier', () => {
  it('gives z_Δ = (z^-2 − (2σ_b)^-2)^(-1/2): z = 1, σ_b = 5 → 1.005037815259212', () => {
    expect(Math.abs(splitNoiseMultiplier(1, 5) - 1.005037815259212)).toBeLessThan(1e-15);
  });

  it('keeps the total privacy cost at z: z_Δ^-2 + (2σ_b)^-2 = z^-2', () => {
    for (const [z, countStd] of [[0.5, 1], [1.1, 2.5], [3, 100]] as const) {
      const zDelta = splitNoiseMultiplier(z, countStd);
      expect(zDelta).toBeGreaterThan(z);
      expect(zDelta ** -2 + (2 * countStd) ** -2).toBeCloseTo(z ** -2, 12);
    }
    expect(splitNoiseMultiplier(0, 5)).toBe(0);
  });

  it('refuses z >= 2σ_b with INVALID_CONFIG', () => {
    expect(() => splitNoiseMultiplier(2, 1)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => splitNoiseMultiplier(1, 0)).toThrow(/needs countNoiseStd > 0.5/);
  });
});
