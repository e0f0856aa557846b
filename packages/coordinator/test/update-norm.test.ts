import { describe, expect, it } from 'vitest';
import { l2Norm } from '@shoal/dp';
import { fedAvg } from '@shoal/strategy';
import type { TrainConfig, UpdateMessage } from '@shoal/protocol';
import { PlainRound, maxUpdateNormFor } from '../src/plain-round.js';
import type { ClientSession } from '../src/sessions.js';

const CONFIG: TrainConfig = { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };

describe('maxUpdateNormFor', () => {
  it("'auto' is the global model's norm (at least 1) in a first round, and at most twice the previous median after", () => {
    const weights = Float32Array.of(3, 4); // ‖w‖ = 5
    expect(maxUpdateNormFor('auto', weights)).toBe(5);
    expect(maxUpdateNormFor('auto', new Float32Array(2))).toBe(1); // a zero model can still move
    expect(maxUpdateNormFor('auto', weights, 0.5)).toBe(1);
    // A hostile majority that inflated the median gets no more than the model-norm bound.
    expect(maxUpdateNormFor('auto', weights, 1e30)).toBe(5);
  });

  it('a number is the bound, whatever the model', () => {
    expect(maxUpdateNormFor(0.25, Float32Array.of(3, 4), 10)).toBe(0.25);
  });
});

describe('PlainRound norm bound', () => {
  function session(id: string): ClientSession {
    return { clientId: id, state: 'ready', numExamples: 1, capabilities: [], assignedRounds: new Set(), lastSeenMs: 0, connection: { send: () => {}, close: () => {}, ping: () => {} } };
  }
  function update(delta: number[], numExamples: number): UpdateMessage {
    return { type: 'update', round: 1, modelVersion: 'r:0', numExamples, delta: Float32Array.from(delta), metrics: { loss: 1, accuracy: 0, trainMs: 1 } };
  }
  function round(ids: string[], maxUpdateNorm: number, config = CONFIG) {
    return new PlainRound({ round: 1, modelVersion: 'r:0', cohort: ids.map(session), weights: new Float32Array(2), numParams: 2, config, strategy: fedAvg(), deadlineMs: 60_000, minClients: 1, maxUpdateNorm });
  }

  it('scales an update above the bound down to it, counts it, and reports the median norm as sent', async () => {
    const plain = round(['honest', 'attacker'], 2);
    const outcome = plain.collect(new AbortController().signal);
    plain.receive('honest', update([0.6, 0.8], 1), 1); // norm 1: kept as is
    plain.receive('attacker', update([3e38, 3e38], 1), 1); // finite, but would dominate or overflow
    const result = await outcome;
    if (!('aggregate' in result)) throw new Error(result.abortReason);
    // The attacker contributes a vector of norm ≤ 2 in its direction, nothing more.
    const attackerPart = Array.from(result.aggregate.weightedSum, (v, i) => v - [0.6, 0.8][i]!);
    expect(l2Norm(attackerPart)).toBeLessThanOrEqual(2);
    expect(l2Norm(attackerPart)).toBeGreaterThan(1.999);
    expect(result.normBound).toMatchObject({ maxUpdateNorm: 2, clippedUpdates: 1 });
    // The median of the norms 1 and √2 · 3e38 (rounded to Float32) as they arrived, before the bound.
    expect(result.normBound!.medianUpdateNorm! / ((1 + Math.SQRT2 * Math.fround(3e38)) / 2)).toBeCloseTo(1, 12);
  });

  it('uses the DP clip norm as the bound when the round has one', async () => {
    const plain = round(['a'], 100, { ...CONFIG, clipNorm: 0.5 });
    const outcome = plain.collect(new AbortController().signal);
    plain.receive('a', update([3, 4], 1), 1);
    const result = await outcome;
    expect(result.normBound).toMatchObject({ maxUpdateNorm: 0.5, clippedUpdates: 1 });
  });

  it('aborts when every update claims numExamples 0: there is no mean to take', async () => {
    const plain = round(['a', 'b'], 2);
    const outcome = plain.collect(new AbortController().signal);
    plain.receive('a', update([1, 0], 0), 1);
    plain.receive('b', update([0, 1], 0), 1);
    const result = await outcome;
    expect('abortReason' in result && result.abortReason).toBe('the 2 updates carry a total weight of 0 (every client reported numExamples 0); there is no mean to take');
  });
});
