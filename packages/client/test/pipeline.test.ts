import { describe, expect, it } from 'vitest';
import { runPipeline, type LocalUpdate, type UpdateStep } from '../src/common/pipeline.js';

const context = { round: 3, modelVersion: 'run:2', config: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } } as const;
const update: LocalUpdate = Object.freeze({ delta: new Float32Array([1, 2, 3]), numExamples: 4, metrics: { loss: 1, accuracy: 0.5, trainMs: 3 } });

describe('runPipeline', () => {
  it('applies the steps in order, each to the previous output', async () => {
    const double: UpdateStep = (u) => ({ ...u, delta: u.delta.map((x) => 2 * x) });
    const addRound: UpdateStep = (u, ctx) => ({ ...u, delta: u.delta.map((x) => x + ctx.round) });
    const result = await runPipeline([double, addRound], update, context);
    expect([...result.delta]).toEqual([5, 7, 9]); // (x·2) + 3, not (x + 3)·2
    expect([...update.delta]).toEqual([1, 2, 3]);
  });

  it('awaits asynchronous steps', async () => {
    const later: UpdateStep = async (u) => ({ ...u, numExamples: u.numExamples + 1 });
    expect((await runPipeline([later, later], update, context)).numExamples).toBe(6);
  });

  it('returns the update unchanged with no steps', async () => {
    expect(await runPipeline([], update, context)).toBe(update);
  });
});
