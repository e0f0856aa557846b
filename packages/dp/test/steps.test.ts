import { describe, expect, it } from 'vitest';
import { clipStep, distributedNoiseStd, distributedNoiseStep, l2Norm, seededNoise, type DeltaUpdate } from '../src/index.js';

/** The shape of @shoal/client's LocalUpdate and UpdateStep, restated so dp need not depend on the client. */
interface LocalUpdate {
  readonly delta: Float32Array;
  readonly numExamples: number;
  readonly metrics: { readonly loss: number; readonly accuracy: number; readonly trainMs: number };
}
type UpdateStep = (update: LocalUpdate, context: { readonly round: number }) => LocalUpdate | Promise<LocalUpdate>;

const update = (delta: Float32Array): LocalUpdate => ({ delta, numExamples: 12, metrics: { loss: 0.5, accuracy: 0.9, trainMs: 3 } });

describe('clipStep', () => {
  it('clips the delta, passes every other field through and does not mutate the input', () => {
    const input = update(Float32Array.of(30, 40));
    const step: UpdateStep = clipStep(5); // type check: usable as the client's UpdateStep
    const output = step(input, { round: 1 }) as LocalUpdate;
    expect(l2Norm(output.delta)).toBeLessThanOrEqual(5);
    expect(l2Norm(output.delta)).toBeGreaterThan(5 * (1 - 1e-6));
    expect(output.numExamples).toBe(12);
    expect(output.metrics).toBe(input.metrics);
    expect(Array.from(input.delta)).toEqual([30, 40]);
  });

  it('rejects a bad clip norm when the step is built, not on first use', () => {
    expect(() => clipStep(-1)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});

describe('distributedNoiseStep', () => {
  it('adds N(0, (zC)^2/t) per coordinate, so t clients\' noise sums to the central std zC', () => {
    const options = { noiseMultiplier: 1.2, clipNorm: 0.5, minSurvivors: 16 };
    expect(distributedNoiseStd(1.2, 0.5, 16)).toBeCloseTo(0.15, 15);
    const d = 20_000;
    const sum = new Float64Array(d);
    for (let client = 0; client < 16; client++) {
      const step = distributedNoiseStep({ ...options, noise: seededNoise(client) });
      const noisy = step<DeltaUpdate>({ delta: new Float32Array(d) }).delta;
      for (let i = 0; i < d; i++) sum[i] = sum[i]! + noisy[i]!;
    }
    const std = Math.sqrt(sum.reduce((acc, x) => acc + x * x, 0) / d);
    expect(Math.abs(std - 0.6) / 0.6).toBeLessThan(0.02);
  });

  it('keeps the other fields and leaves the input alone', () => {
    const input = update(Float32Array.of(0.1, 0.2));
    const output = distributedNoiseStep({ noiseMultiplier: 1, clipNorm: 1, minSurvivors: 2, noise: seededNoise(3) })(input);
    expect(output.numExamples).toBe(12);
    expect(Array.from(input.delta)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    expect(output.delta).not.toEqual(input.delta);
  });

  it('validates its options when built', () => {
    expect(() => distributedNoiseStep({ noiseMultiplier: 1, clipNorm: 1, minSurvivors: 0 })).toThrow(/minSurvivors must be an integer >= 1/);
    expect(() => distributedNoiseStep({ noiseMultiplier: -1, clipNorm: 1, minSurvivors: 3 })).toThrow(/noiseMultiplier/);
  });
});
