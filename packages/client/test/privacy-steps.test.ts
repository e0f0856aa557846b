import { describe, expect, it } from 'vitest';
import { seededNoise } from '@shoal/dp';
import { runPipeline, type LocalUpdate } from '../src/common/pipeline.js';
import { privacySteps } from '../src/common/privacy-steps.js';

const base = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
const context = { round: 1, modelVersion: 'v', config: base };
const update = (delta: number[]): LocalUpdate => ({ delta: new Float32Array(delta), numExamples: 3, metrics: { loss: 1, accuracy: 0, trainMs: 1 } });
const norm = (v: Float32Array) => Math.hypot(...v);

describe('privacySteps', () => {
  it('adds nothing without DP settings', () => {
    expect(privacySteps(base)).toEqual([]);
  });

  it('clips to clipNorm and records whether the update was within it', async () => {
    const big = await runPipeline(privacySteps({ ...base, clipNorm: 1 }), update([3, 4]), context);
    expect(norm(big.delta)).toBeCloseTo(1, 5);
    expect(big.unclipped).toBe(false);
    const small = await runPipeline(privacySteps({ ...base, clipNorm: 10 }), update([3, 4]), context);
    expect([...small.delta]).toEqual([3, 4]);
    expect(small.unclipped).toBe(true);
  });

  it('adds noise of std noiseStd after clipping', async () => {
    const zeros = update(new Array(20_000).fill(0));
    const noised = await runPipeline(privacySteps({ ...base, clipNorm: 1, noiseStd: 0.5 }, seededNoise(3)), zeros, context);
    const variance = noised.delta.reduce((t, x) => t + x * x, 0) / noised.delta.length;
    expect(Math.sqrt(variance)).toBeGreaterThan(0.48);
    expect(Math.sqrt(variance)).toBeLessThan(0.52);
    expect(noised.unclipped).toBe(true); // the bit describes the update, not the noise
  });
});
