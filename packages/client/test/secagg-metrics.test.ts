// Under secure aggregation a client's training metrics stay on the device unless the round asks
// for them (train.secagg.shareMetrics), and never travel under distributed DP. `playRound` sends
// `masked.metrics` exactly when the plan's `sendsMetrics` says so.
import { describe, expect, it } from 'vitest';
import type { SecAggRoundConfig, TrainMessage } from '@shoal/protocol';
import { planRound } from '../src/common/consent.js';

const SECAGG: SecAggRoundConfig = { mode: 'secagg', index: 1, threshold: 2, degree: 3, bound: 1_000, scale: 1_000, maxWeight: 1_000, sessionId: 'session' };

function train(secagg: SecAggRoundConfig | undefined, noiseStd?: number): TrainMessage {
  return {
    type: 'train',
    round: 1,
    modelVersion: 'run:0',
    config: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0, ...(noiseStd !== undefined ? { clipNorm: 1, noiseStd } : {}) },
    deadlineMs: 1_000,
    ...(secagg ? { secagg } : {}),
  };
}

describe('which rounds send training metrics', () => {
  it('a plain round does', () => {
    expect(planRound(train(undefined), 6).sendsMetrics).toBe(true);
  });

  it('a SecAgg round does not, unless it asks', () => {
    expect(planRound(train(SECAGG), 6).sendsMetrics).toBe(false);
    expect(planRound(train({ ...SECAGG, shareMetrics: false }), 6).sendsMetrics).toBe(false);
    expect(planRound(train({ ...SECAGG, shareMetrics: true }), 6).sendsMetrics).toBe(true);
  });

  it('a SecAgg round with distributed DP never does, even when it asks', () => {
    expect(planRound(train({ ...SECAGG, shareMetrics: true }, 0.5), 6).sendsMetrics).toBe(false);
  });
});
